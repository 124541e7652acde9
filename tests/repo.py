"""The repository's root, for tests that run commands or read files in it (any folder depth below tests/)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
