"""The command line, as a user runs it."""

import subprocess
import sys

import pytest
import torch
from repo import ROOT

from lib_qwen35 import __main__ as cli
from lib_qwen35.cli.demo import synthetic_weights_path
from lib_qwen35.cli.parser import build_parser


def test_encode_without_weights_says_synthetic(capsys, tmp_path):
    assert cli.main(["encode", "1girl, silver hair", "--save", str(tmp_path / "e.safetensors")]) == 0
    out, err = capsys.readouterr()
    assert "SYNTHETIC" in err and "(SYNTHETIC)" in out
    assert "tokens    5" in out and "token_diversity" in out
    from safetensors.torch import load_file
    assert load_file(tmp_path / "e.safetensors")["embeddings"].shape == (5, 1024)


def test_encode_with_weights_and_output_stage(capsys, tmp_path, anima_ckpt):
    from lib_qwen35 import Calibration

    Calibration(torch.full((1024,), 2.0), torch.zeros(1024)).save(tmp_path / "cal.safetensors")
    assert cli.main(["encode", "a", "--weights", str(anima_ckpt), "--calibration", str(tmp_path / "cal.safetensors"),
                     "--scale", "0.5"]) == 0
    out, err = capsys.readouterr()
    assert "SYNTHETIC" not in err and "tokens    1" in out


def test_stats_over_a_prompt_file(capsys, tmp_path, anima_ckpt):
    f = tmp_path / "p.txt"
    f.write_text("1girl\nscenery, mountains\n\na cat\n", encoding="utf-8")
    assert cli.main(["stats", "--prompts", str(f), "--weights", str(anima_ckpt), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "3 prompts" in out and "cross_prompt_similarity" in out


def test_bad_weights_exit_code_and_message(capsys, tmp_path):
    assert cli.main(["encode", "x", "--weights", str(tmp_path / "missing.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "lib_qwen35", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "encode" in r.stdout


def test_diagnostics_definitions():
    from lib_qwen35.cli.metrics import prompt_metrics

    same = torch.ones(4, 8)
    m = prompt_metrics([same, 2 * same])
    assert m["token_diversity"] == pytest.approx(0.0, abs=1e-12)       # collapsed tokens
    assert m["cross_prompt_similarity"] == pytest.approx(1.0)
    assert m["token_l2"] == pytest.approx((8 ** 0.5 + 2 * 8 ** 0.5) / 2)
    assert m["global_mean"] == pytest.approx(1.5) and m["global_std"] == pytest.approx(0.5)
    orth = torch.eye(3)
    assert prompt_metrics([orth])["token_diversity"] == pytest.approx(1.0)


@pytest.mark.parametrize("argv, message", [
    (["encode", "x", "--strength", "1.5"], "strength must be in"),
    (["encode", "x", "--scale", "nan"], "output scale"),
    (["encode", "x", "--device", "foo"], "unknown device"),
    (["stats", "--prompts", "/nonexistent/prompts.txt"], "was not found"),
    (["encode", "x", "--save", "/nonexistent/dir/out.safetensors"], "folder /nonexistent/dir does not exist"),
    (["fit", "--out", "FIT", "--limit", "300", "--holdout", "0"], "holdout must be"),
    (["fit", "--out", "FIT", "--limit", "300", "--batch-size", "0"], "batch size must be"),
])
def test_bad_command_lines_give_a_message_not_a_traceback(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / "fit") if a == "FIT" else a for a in argv]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_non_utf8_prompt_file(capsys, tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes(b"caf\xe9\n")
    assert cli.main(["stats", "--prompts", str(f)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_damaged_demo_checkpoint_is_rebuilt(capsys):
    path = synthetic_weights_path()
    with open(path, "r+b") as f:
        f.truncate(1000)
    assert cli.main(["encode", "a"]) == 0


def test_inspect_describes_a_file_without_loading_it(capsys, tmp_path):
    from lib_qwen35.synthetic import qwen35 as synthetic

    path = synthetic.write_checkpoint(tmp_path / "q.safetensors", prefix="model.")
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prefix 'model.'" in out and "6 Gated DeltaNet, 2 gated attention" in out and "F8_E4M3" in out
    from safetensors.torch import save_file
    save_file({"model.layers.0.self_attn.q_norm.weight": torch.ones(128)}, tmp_path / "other.safetensors")
    assert cli.main(["inspect", str(tmp_path / "other.safetensors")]) == 2
    assert "not a Qwen3.5 text encoder" in capsys.readouterr().err


# ---- issue 16: the command line agrees with itself, the WebUI and its docs ---------------------------------
DATA = ROOT / "alignment_data"


def test_stats_reads_prompt_files_with_the_same_reader_as_fit(capsys, tmp_path, anima_ckpt):
    from lib_qwen35.alignment.corpus import read_prompt_file

    for name in ("example_prompts.txt", "example_prompts.jsonl"):
        assert cli.main(["stats", "--prompts", str(DATA / name), "--weights", str(anima_ckpt)]) == 0
        assert f"{len(read_prompt_file(DATA / name))} prompts encoded" in capsys.readouterr().out
    assert len(read_prompt_file(DATA / "example_prompts.txt")) == 14          # its first line is a comment
    only_comment = tmp_path / "todo.txt"
    only_comment.write_text("# prompts go here\n\n", encoding="utf-8")
    assert cli.main(["stats", "--prompts", str(only_comment), "--weights", str(anima_ckpt)]) == 2
    err = capsys.readouterr().err
    assert "todo.txt" in err and "no prompts" in err


def test_encode_and_stats_remove_emphasis_like_the_webui(capsys, tmp_path, anima_ckpt):
    from lib_qwen35.files.tokenizer import load_qwen35_tokenizer

    tok = load_qwen35_tokenizer()
    prompt = "1girl, (masterpiece:1.2), [blurry], ((detailed))"
    expected = {"comfy": "1girl, masterpiece, [blurry], detailed", "a1111": "1girl, masterpiece, blurry, detailed",
                "none": prompt}
    for syntax, text in expected.items():
        args = ["encode", prompt, "--weights", str(anima_ckpt)] + (["--emphasis", syntax] if syntax != "comfy" else [])
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert f"tokens    {len(tok.encode(text))} " in out, (syntax, out)
        assert (f"text      {text}" in out) == (syntax != "none")
    # stats: the weighted and the plain prompt are the same text, so the same embedding
    f = tmp_path / "p.txt"
    f.write_text("(masterpiece:1.2), 1girl\nmasterpiece, 1girl\n", encoding="utf-8")
    assert cli.main(["stats", "--prompts", str(f), "--weights", str(anima_ckpt), "--json", str(tmp_path / "m.json")]) == 0
    import json
    assert json.loads((tmp_path / "m.json").read_text())["cross_prompt_similarity"] == pytest.approx(1.0, abs=1e-6)


def test_encode_with_several_words_says_quote_it_or_use_stats(capsys):
    assert cli.main(["encode", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert "one prompt" in err and '"a b"' in err and "stats --prompts" in err


@pytest.mark.parametrize("command", [["encode", "x"], ["stats", "--prompts", str(DATA / "example_prompts.txt")]])
def test_strength_without_alignment_is_an_error_not_ignored(capsys, command):
    assert cli.main(command + ["--strength", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--strength" in err and "--alignment" in err


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
        assert cli.main(argv) == 2
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


def test_inspect_names_the_real_file_and_the_stock_encoder(capsys, tmp_path):
    from header_files import full_size_qwen35_header, write_header_only

    from lib_qwen35.model.qwen3 import Qwen3Config
    from lib_qwen35.model.qwen3 import expected_shapes as qwen3_shapes
    from lib_qwen35.synthetic import qwen3 as synthetic_qwen3

    assert cli.main(["inspect", str(full_size_qwen35_header(tmp_path / "qwen35_4b.safetensors"))]) == 0
    out = capsys.readouterr().out
    assert "426 tensors, 4,138,640,384 parameters" in out and "full size" in out and "can use it" in out
    from lib_qwen35.synthetic import qwen35 as synthetic
    official = synthetic.write_checkpoint(tmp_path / "official.safetensors", layout="official")
    assert cli.main(["inspect", str(official)]) == 0
    out = capsys.readouterr().out
    assert "without Anima's projection head" in out and "get qwen35_4b.safetensors" in out
    # the stock Qwen3-0.6B: a small synthetic one, and one with the real sizes (header only)
    small = synthetic_qwen3.write_checkpoint(tmp_path / "qwen_small.safetensors")
    assert cli.main(["inspect", str(small)]) == 0
    out = capsys.readouterr().out
    assert "Qwen3" in out and "not the Qwen3.5-4B" in out and "--weights-06b" in out
    stock = tmp_path / "qwen_3_06b_base.safetensors"
    write_header_only(stock, {"model." + k: ("BF16", s) for k, s in qwen3_shapes(Qwen3Config()).items()})
    assert cli.main(["inspect", str(stock)]) == 0
    out = capsys.readouterr().out
    assert "the stock Anima text encoder, Qwen3-0.6B" in out and "not the Qwen3.5-4B" in out


def test_a_folder_given_as_weights_gets_the_file_to_give_instead(capsys, tmp_path):
    folder = tmp_path / "qwen35"
    folder.mkdir()
    (folder / "qwen35_4b.safetensors").write_bytes(b"")
    for argv in (["inspect", str(folder)], ["encode", "x", "--weights", str(folder)]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "is a folder" in err and str(folder / "qwen35_4b.safetensors") in err


def test_output_stage_file_messages_use_the_right_article(capsys, tmp_path, anima_ckpt):
    from safetensors.torch import save_file

    wrong = tmp_path / "not_rotation.safetensors"
    save_file({"scale": torch.ones(1024)}, wrong)
    for path in (wrong, tmp_path):
        assert cli.main(["encode", "x", "--weights", str(anima_ckpt), "--alignment", str(path)]) == 2
        err = capsys.readouterr().err
        assert "not an alignment file" in err and "not a alignment" not in err


def test_fit_ends_with_what_to_do_in_the_webui():
    import os

    from lib_qwen35.cli.fit import next_steps

    elsewhere = next_steps(os.path.join("fits", "rotation_matrix.safetensors"),
                           os.path.join("fits", "calibration_params.safetensors"))
    assert "models/qwen35" in elsewhere and "Use alignment" in elsewhere and "rotation_matrix.safetensors" in elsewhere
    assert "Use calibration" in elsewhere and "X/Y/Z" in elsewhere
    inside = next_steps(os.path.join("/w", "models", "qwen35", "a", "rotation_matrix.safetensors"),
                        os.path.join("/w", "models", "qwen35", "a", "calibration_params.safetensors"))
    assert "already" in inside and "Use alignment" in inside


# ---- the Python a user runs it with, and where from ---------------------------------------------------------
REPO = DATA.parent
HIDE = "import runpy, sys; sys.modules[{name!r}] = None; runpy.run_module('lib_qwen35', run_name='__main__', alter_sys=True)"


def _run_without(package, *argv):
    return subprocess.run([sys.executable, "-c", HIDE.format(name=package), *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_without_torch_help_works_and_each_command_names_the_python_to_use():
    r = _run_without("torch", "--help")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    for command in ("encode", "stats", "inspect", "fit", "corpus"):
        assert command in r.stdout
    for argv in (["encode", "x"], ["stats", "--prompts", "p.txt"], ["inspect", "f.safetensors"],
                 ["fit", "--out", "o"], ["fit", "--help"]):
        r = _run_without("torch", *argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (argv, r.stderr)
        assert "'torch'" in r.stderr and "venv" in r.stderr and "WebUI's Python" in r.stderr, r.stderr
    assert _run_without("torch", "corpus", "--limit", "7").returncode == 0        # needs nothing but Python


def test_without_tokenizers_encode_names_it():
    r = _run_without("tokenizers", "encode", "x")
    assert r.returncode == 2 and "'tokenizers'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_package_folder_runs_as_a_script_from_anywhere(tmp_path):
    """`python extensions/NAME/lib_qwen35 ...`: the form the README gives for the WebUI folder."""
    r = subprocess.run([sys.executable, str(REPO / "lib_qwen35"), "--help"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "inspect" in r.stdout, r.stderr


def test_models_paths_mean_the_webui_models_folder(tmp_path, monkeypatch):
    import os

    from lib_qwen35.files import webui_paths

    webui = tmp_path / "webui"
    extension = webui / "extensions" / "sd-forge-qwen35-anima"
    extension.mkdir(parents=True)
    (webui / "models" / "qwen35").mkdir(parents=True)
    monkeypatch.setattr(webui_paths, "EXTENSION_DIR", str(extension))
    monkeypatch.delenv("PWD", raising=False)
    wanted = os.path.join(str(webui), "models", "qwen35", "f.safetensors")
    for cwd in (webui, extension):
        assert os.path.normpath(webui_paths.user_path("models/qwen35/f.safetensors", str(cwd))) == wanted
        assert webui_paths.user_path("./models/qwen35/f.safetensors", str(cwd)).endswith("f.safetensors")
    assert webui_paths.user_path("modelsX/f.safetensors", str(extension)) == "modelsX/f.safetensors"
    assert webui_paths.user_path("alignment_data/x.txt", str(extension)) == "alignment_data/x.txt"
    assert webui_paths.user_path(wanted, str(extension)) == wanted
    monkeypatch.setattr(webui_paths, "EXTENSION_DIR", str(tmp_path / "elsewhere"))     # not inside a WebUI
    assert webui_paths.user_path("models/qwen35/f.safetensors", str(tmp_path)) == "models/qwen35/f.safetensors"


def test_models_paths_work_from_a_symlinked_extension_folder(tmp_path, anima_ckpt):
    """Installed as a symlink (as the harnesses do), the extension folder's real path is elsewhere: the shell's
    PWD still names the WebUI above it."""
    import os
    import shutil

    webui = tmp_path / "webui"
    (webui / "models" / "qwen35").mkdir(parents=True)
    (webui / "extensions").mkdir()
    shutil.copy(anima_ckpt, webui / "models" / "qwen35" / "qwen35_4b.safetensors")
    link = webui / "extensions" / "sd-forge-qwen35-anima"
    link.symlink_to(REPO, target_is_directory=True)
    env = {**os.environ, "PWD": str(link)}
    r = subprocess.run([sys.executable, "-m", "lib_qwen35", "inspect", "models/qwen35/qwen35_4b.safetensors"],
                       cwd=link, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "verdict" in r.stdout, r.stderr
    assert str(webui / "models" / "qwen35" / "qwen35_4b.safetensors") in r.stdout
