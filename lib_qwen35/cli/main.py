"""The command line's entry: parse, resolve models/... paths, run the command, and turn bad input into a message
and exit code 2 instead of a traceback (a missing package names the Python to use)."""

from __future__ import annotations

import sys

from ..errors import Qwen35Error
from .missing_package import MissingPackage, missing_runtime_package
from .parser import build_parser
from .paths import resolve_paths


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "any_arguments", False):
        parser.parse_args(argv)          # argparse's own message and exit for arguments nobody takes
    try:
        resolve_paths(args)
        return args.func(args)
    except MissingPackage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if missing_runtime_package(e) is None:
            raise
        print(f"error: {MissingPackage(args.command, missing_runtime_package(e))}", file=sys.stderr)
        return 2
    except (Qwen35Error, ValueError, OSError) as e:   # bad input: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
