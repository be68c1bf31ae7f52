def mean(values):
    """The arithmetic mean of a non-empty list of numbers."""
    total = 0
    for value in values:
        total += value
    return 


def maximum(values):
    best = values[0]
    for value in values[1:]:
        if value > best:
            
    return best
