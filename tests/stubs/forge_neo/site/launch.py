"""Stand-in for launch.py: is_installed / run_pip (recorded, never run)."""

import importlib.util

pip_calls = []
pretend_missing = set()


def is_installed(package):
    if package in pretend_missing:
        return False
    return importlib.util.find_spec(package) is not None


def run_pip(command, desc=None, live=False):
    pip_calls.append((command, desc))
