import math


def area(radius):
    return 


def circumference(radius):
    return 2 * math.pi * radius
