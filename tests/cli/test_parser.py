"""The parser: every command's options, their help and their defaults."""


import torch

from repo import ROOT

from lib_qwen35.cli.main import main
from lib_qwen35.cli.parser import build_parser

DATA = ROOT / "alignment_data"


def test_every_command_picks_the_device_by_the_same_rule(monkeypatch, tmp_path, anima_ckpt):
    """encode, stats and fit all default to auto: the GPU when torch sees one (encode used to say cpu)."""
    import lib_qwen35.model.encoder as encoder_module

    asked = []

    def fake_load(path, device="cpu", **kwargs):
        asked.append(device)
        raise cli_stop("stop after the device is chosen")

    class cli_stop(ValueError):
        pass

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(encoder_module, "load_encoder", fake_load)
    weights = str(anima_ckpt)
    fit_out = str(tmp_path / "fit")
    for argv in (["encode", "x", "--weights", weights], ["stats", "--prompts", str(DATA / "example_prompts.txt"),
                 "--weights", weights], ["fit", "--weights-4b", weights, "--weights-06b", weights, "--out", fit_out]):
        assert main(argv) == 2
    assert asked == ["cuda", "cuda", "cuda"]
    parser = build_parser()
    for command in ("encode", "stats", "fit"):
        argv = [command] + {"encode": ["x"], "stats": ["--prompts", "p"], "fit": ["--out", "o"]}[command]
        assert parser.parse_args(argv).device == "auto"


def _options(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((name, a) for a in sub._actions if not isinstance(a, argparse._HelpAction))


def test_every_option_has_help_and_shows_its_default():
    problems = []
    for command, action in _options(build_parser()):
        name = action.option_strings[-1] if action.option_strings else action.dest
        if not action.help:
            problems.append(f"{command} {name}: no help")
        elif action.option_strings and action.default not in (None, False) and "default" not in action.help:
            problems.append(f"{command} {name}: default {action.default!r} not shown")
        elif action.option_strings and not isinstance(action.default, bool) and "default" not in action.help \
                and not action.required:
            problems.append(f"{command} {name}: says nothing of what happens without it")
    assert not problems, problems
