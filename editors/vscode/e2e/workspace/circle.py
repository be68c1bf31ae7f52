import math


def circle_area(radius):
    return 


def circumference(radius):
    return 2 * math.pi * radius
