"""Stand-in for modules/errors.py: report() prints and records instead of raising, like Forge."""

reported = []


def report(message, *, exc_info=False):
    import sys

    exc = sys.exc_info()[1] if exc_info else None
    reported.append((message, exc))
    print(message, repr(exc))


def display(e, task):
    reported.append((task, e))
