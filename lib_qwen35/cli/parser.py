"""The command line's parser: the five commands, their line in --help and their own --help.

`fit` imports torch when its module is imported; in a Python without torch it is still listed, and running it
(or its --help) names the Python to use. The other commands' modules import torch only when they run.
"""

from __future__ import annotations

import argparse

from ..alignment.corpus import PROMPT_FILE_RULES
from . import corpus, encode, inspect_file, stats
from .missing_package import WEBUI_PYTHON, MissingPackage, missing_runtime_package

FIT_SUMMARY = "fit the 4B -> 0.6B alignment and calibration files, with a held-out report"
CORPUS_SUMMARY = "export the built-in prompt corpus (JSON lines) or its manifest"


def _missing_package_command(name: str, summary: str, package: str, sub) -> None:
    """A command whose module cannot be imported here: listed, and explains itself when run."""
    p = sub.add_parser(name, help=f"{summary} (needs {package}: run it with the WebUI's Python)", add_help=False)

    def explain(args):
        raise MissingPackage(name, package)

    p.set_defaults(func=explain, any_arguments=True)      # its options are unknown here: main() lets them pass


def _command(sub, name: str, module, **texts) -> None:
    p = sub.add_parser(name, **texts)
    module.add_arguments(p)
    p.set_defaults(func=module.main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lib_qwen35", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The Qwen3.5-4B text encoder for Anima: check a weights file, encode prompts, fit the "
                    "alignment. Run it with the WebUI's Python: " + WEBUI_PYTHON + " (python path/to/lib_qwen35 "
                    "...), or python -m lib_qwen35 ... from the extension folder.",
        epilog="A path that starts with models/ means the WebUI's models folder, from the WebUI folder and from "
               "the extension folder alike. Each command has its own --help.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(sub, "encode", encode, help="encode one prompt and print its token count and embedding metrics",
             description="Encode one prompt (in double quotes) and print the token count and metrics.")
    _command(sub, "stats", stats, help="embedding metrics over a file of prompts",
             description="Encode every prompt of a prompt file and print the metrics over them.",
             epilog=PROMPT_FILE_RULES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _command(sub, "inspect", inspect_file, help="say what a weights, alignment or calibration file is; check a fit "
             "against an encoder", description="Say what a .safetensors weights file is, from its header (nothing is "
             "loaded); describe an alignment or calibration file (its hash, what it was fitted on) and check it "
             "against an encoder file (--weights) or an alignment (--alignment).")
    try:
        from . import fit  # here, not at the top: without torch the other commands (and --help) still work
    except ModuleNotFoundError as e:
        if missing_runtime_package(e) is None:
            raise
        _missing_package_command("fit", FIT_SUMMARY, missing_runtime_package(e), sub)
    else:
        _command(sub, "fit", fit, help=FIT_SUMMARY, description=FIT_SUMMARY[0].upper() + FIT_SUMMARY[1:] + ".")
    _command(sub, "corpus", corpus, help=CORPUS_SUMMARY,
             description=CORPUS_SUMMARY[0].upper() + CORPUS_SUMMARY[1:] + ".")
    return parser
