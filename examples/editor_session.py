import os


def add(a, b):
    return █


def read_lines(path):
    with open(path) as f:
        return f.█


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.█

    def pop(self):
        return self.items.pop()

    def __len__(self):
        return █


def list_python_files(folder):
    """The names of the .py files in folder, sorted."""
    ...
