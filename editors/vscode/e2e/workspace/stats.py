def mean(values):
    """The arithmetic mean of a non-empty list of numbers."""
    pass


def variance(values):
    m = mean(values)
    return sum((x - m) ** 2 for x in values) / len(values)
