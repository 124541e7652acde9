"""The command line run by a Python that lacks a package it needs (usually not the WebUI's Python): which package,
and which Python to use instead."""

from __future__ import annotations

import platform
import sys

RUNTIME_PACKAGES = ("torch", "safetensors", "tokenizers", "numpy")   # what the WebUI's Python has
WEBUI_PYTHON = ("venv/bin/python (Linux, macOS) or .\\venv\\Scripts\\python.exe (Windows), from the WebUI "
                "folder")


class MissingPackage(Exception):
    """A package the command needs is not importable in this Python (the wrong Python, usually)."""

    def __init__(self, command: str, package: str):
        super().__init__(
            f"the {command} command needs the Python package {package!r}, which this Python does not have "
            f"({sys.executable}, Python {platform.python_version()}). Run it with your WebUI's Python, which "
            f"has it: {WEBUI_PYTHON}. Never install packages into the WebUI's Python for this (developers: "
            f"docs/development.md).")


def missing_runtime_package(error: ModuleNotFoundError) -> str | None:
    """The runtime package (RUNTIME_PACKAGES) whose absence raised `error`, or None for any other module."""
    package = (error.name or "").split(".")[0]
    return package if package in RUNTIME_PACKAGES else None
