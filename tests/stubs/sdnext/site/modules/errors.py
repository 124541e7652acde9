"""Stand-in for SD.Next's modules/errors.py: display() logs an exception (SD.Next prints a rich traceback)."""

import traceback

displayed = []   # (task, exception) in order


def display(e, task, suppress=None):
    displayed.append((task, e))
    print(f"{task}: {type(e).__name__}: {e}")
    traceback.print_exception(type(e), e, e.__traceback__)
