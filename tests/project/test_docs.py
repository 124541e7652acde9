"""The README and docs/ against the code: every user command runs as written (Linux and Windows spelling, from
the WebUI folder and from the extension folder, in a fake WebUI on synthetic checkpoints), every link resolves,
the quoted outputs are what the tool prints, and CI runs the README's test command."""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from fits import write_fitted_pair
from repo import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "alignment_data" / "README.md"]
COMMAND_DOCS = [README, ROOT / "docs" / "cli.md", ROOT / "docs" / "alignment-fitting.md"]
EXTENSION = "sd-forge-qwen35-anima"
LINUX = f"venv/bin/python extensions/{EXTENSION}/lib_qwen35 "
WINDOWS = f".\\venv\\Scripts\\python.exe extensions\\{EXTENSION}\\lib_qwen35 "
README_LIMIT = 20_000            # bytes: the README is for users; the rest lives in docs/


def fenced_blocks(path):
    """(language, [lines]) of every fenced code block."""
    blocks, current, language = [], None, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if current is None:
                current, language = [], line[3:].strip()
            else:
                blocks.append((language, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def user_commands(path):
    """The user command lines of a document: fenced lines that start with the WebUI-folder launcher."""
    return [line for _, lines in fenced_blocks(path) for line in lines if line.startswith((LINUX, WINDOWS))]


def arguments(line):
    """The tool's arguments of a user command, Windows spelling turned into the Linux one."""
    if line.startswith(WINDOWS):
        return shlex.split(line[len(WINDOWS):].replace("\\", "/"))
    return shlex.split(line[len(LINUX):])


# ---- size, links, anchors --------------------------------------------------------------------------------
def test_readme_is_short_enough_to_read():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it <= {README_LIMIT} (move detail to docs/)"


def github_anchor(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    out, in_fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(r"#{1,6} ", line):
            out.add(github_anchor(line.lstrip("#")))
    return out


def links(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)   # not inside code blocks
    return re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'<img src="([^"]+)"', text)


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_link_and_anchor_resolves(path):
    broken = []
    for target in links(path):
        if re.match(r"https?://", target):
            continue
        file_part, _, anchor = target.partition("#")
        file = (path.parent / file_part).resolve() if file_part else path
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not broken, broken


def test_the_anchor_rule_matches_github_on_our_headings():
    assert github_anchor(" 3. Put the file in `models/qwen35/`") == "3-put-the-file-in-modelsqwen35"
    assert github_anchor(' Infotext, PNG Info and "Send to"') == "infotext-png-info-and-send-to"
    assert github_anchor(" X/Y/Z plot") == "xyz-plot"
    assert github_anchor(" The stock encoder (`lib_qwen35/model/qwen3.py`)") == "the-stock-encoder-lib_qwen35modelqwen3py"


def test_every_section_of_the_readme_is_one_click_from_the_contents():
    text = README.read_text(encoding="utf-8")
    contents = text[text.index("## Contents"):text.index("\n## ", text.index("## Contents") + 3)]
    linked = set(re.findall(r"\]\(#([^)]+)\)", contents))
    sections = [github_anchor(h) for h in re.findall(r"^## (.+)$", text, re.M) if h not in ("Contents",)]
    missing = [s for s in sections if s not in linked and s != "status"]
    assert not missing, f"README sections not in the contents list: {missing}"


def test_readme_has_no_word_for_what_does_not_exist():
    """The former README named a bundled rotation_matrix.safetensors that was never there."""
    text = README.read_text(encoding="utf-8")
    assert "alignment_data/rotation_matrix" not in text
    assert not list((ROOT / "alignment_data").glob("*.safetensors"))
    assert "none ships with the extension" in text
    # one folder for the weights: models/qwen35, in the quick start and in every command
    for line in user_commands(README):
        assert "text_encoder/qwen35_4b" not in line.replace("\\", "/"), line


# ---- commands: as written, on Linux and Windows, from both folders -----------------------------------------
@pytest.mark.parametrize("path", COMMAND_DOCS, ids=lambda p: p.name)
def test_user_commands_use_no_shell_specific_syntax_and_come_in_both_spellings(path):
    commands = user_commands(path)
    assert commands, f"{path.name} shows no user command"
    for line in commands:
        for bad in ("\\\n", "flock", "$", "~", "&&", "'", "env ", "export ", "|", ">", "<"):
            assert bad not in line, f"{path.name}: {bad!r} in a user command: {line}"
        assert not line.endswith("\\"), line
    linux = [arguments(c) for c in commands if c.startswith(LINUX)]
    windows = [arguments(c) for c in commands if c.startswith(WINDOWS)]
    assert linux == windows, f"{path.name}: every Linux command needs its Windows twin, in the same order"
    for language, lines in fenced_blocks(path):       # bash: developer set-up; python: library code; text: output
        for line in lines:
            if language not in ("bash", "python", "text") and "lib_qwen35" in line and not line.startswith((LINUX, WINDOWS)):
                pytest.fail(f"{path.name}: a command that is not in the user form: {line}")


def test_the_readme_developer_block_is_the_only_other_command_and_ci_runs_its_test_command():
    blocks = [lines for language, lines in fenced_blocks(README) if language == "bash"]
    assert len(blocks) == 1, "one developer block (the two set-up commands)"
    setup, test_command = [line for line in blocks[0] if line.strip()]
    assert "torch==2.13.0" in setup and "requirements-test.txt" in setup and "lib_qwen35 encode" in setup
    assert test_command == "python -m pytest -q tests"
    ci = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1].replace("python3", "python") == test_command
    text = README.read_text(encoding="utf-8")
    before = text[:text.index("```bash")]
    assert "Never run\nthem in a WebUI's Python" in before or "Never run them in a WebUI's Python" in before


@pytest.fixture(scope="module")
def fake_webui(tmp_path_factory, ckpt_dir):
    """WEBUI/{models/qwen35/qwen35_4b.safetensors, models/text_encoder/qwen_3_06b_base.safetensors,
    extensions/sd-forge-qwen35-anima/ (the package, tokenizers, alignment data)}: synthetic weights in the real
    layouts; the 0.6B one has Qwen3's whole vocabulary and width 1024, so it reads real prompts."""
    from lib_qwen35.synthetic import qwen3 as synthetic_qwen3
    from lib_qwen35.synthetic import qwen35 as synthetic

    webui = tmp_path_factory.mktemp("webui")
    extension = webui / "extensions" / EXTENSION
    extension.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("lib_qwen35", "tokenizer", "alignment_data"):
        shutil.copytree(ROOT / part, extension / part, ignore=ignore)
    (webui / "models" / "qwen35").mkdir(parents=True)
    (webui / "models" / "text_encoder").mkdir(parents=True)
    synthetic.write_checkpoint(webui / "models" / "qwen35" / "qwen35_4b.safetensors", seed=0)
    synthetic_qwen3.write_checkpoint(webui / "models" / "text_encoder" / "qwen_3_06b_base.safetensors", seed=1,
                                     vocab_size=151936, hidden_size=1024, intermediate_size=64, num_layers=1,
                                     num_attention_heads=8, num_key_value_heads=4, head_dim=64)
    for folder in (webui, extension):          # the prompt file stats names, "a text file of yours"
        shutil.copy(ROOT / "alignment_data" / "example_prompts.txt", folder / "my_prompts.txt")
    theirs = webui / "models" / "qwen35" / "theirs"     # a downloaded fit, for its encoder (both synthetic here)
    theirs.mkdir()
    write_fitted_pair(theirs / "rotation_theirs.safetensors", theirs / "calibration_theirs.safetensors",
                      webui / "models" / "qwen35" / "qwen35_4b.safetensors")
    return webui, extension


def _all_user_commands():
    seen, out = set(), []
    for path in COMMAND_DOCS:
        for line in user_commands(path):
            args = arguments(line)
            if line.startswith(LINUX) and tuple(args) not in seen:
                seen.add(tuple(args))
                out.append(pytest.param(args, id=f"{path.name}:{args[0]}:{len(out)}"))
    return out


def _run(argv, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PWD"}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("args", _all_user_commands())
def test_each_documented_user_command_runs_as_written_from_both_folders(fake_webui, args):
    webui, extension = fake_webui
    if args[0] == "fit":
        args = args + ["--limit", "1200"]     # the whole corpus takes minutes even on tiny weights
    from_webui = _run([sys.executable, *LINUX.split()[1:2], *args], webui)
    from_extension = _run([sys.executable, "-m", "lib_qwen35", *args], extension)
    for where, r in (("WebUI folder", from_webui), ("extension folder", from_extension)):
        assert r.returncode == 0 and "Traceback" not in r.stderr, f"from the {where}: {args}\n{r.stdout}\n{r.stderr}"
    assert not (extension / "models").exists(), "a models/ path was read against the extension folder"
    if args[0] == "inspect":
        assert "verdict" in from_webui.stdout and from_webui.stdout.split("\n", 1)[1] == from_extension.stdout.split("\n", 1)[1]
        if "--weights" in args:
            assert "verdict   confirmed: fitted on this encoder file" in from_webui.stdout
    if args[0] == "fit":
        out = webui / "models" / "qwen35" / "my_fit"
        assert (out / "rotation_matrix.safetensors").exists() and (out / "calibration_params.safetensors").exists()
        assert (webui / "models" / "qwen35_fit_cache" / "my_fit").is_dir()
        assert "Next:" in from_webui.stdout and "already under models/qwen35" in from_webui.stdout
    if args[0] == "encode":
        assert "text      1girl, masterpiece, from side" in from_webui.stdout


def test_the_verdict_the_docs_quote_is_what_inspect_prints_for_the_real_layout(tmp_path):
    from header_files import full_size_qwen35_header

    path = full_size_qwen35_header(tmp_path / "qwen35_4b.safetensors")
    r = subprocess.run([sys.executable, "-m", "lib_qwen35", "inspect", str(path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    verdict = next(line for line in r.stdout.splitlines() if line.startswith("verdict"))
    for doc in (README, ROOT / "docs" / "cli.md"):
        quoted = " ".join(doc.read_text(encoding="utf-8").split())      # line breaks inside the quote
        assert " ".join(verdict.split()) in quoted.replace("`", ""), doc.name


def test_the_fit_inspect_output_the_docs_quote_has_the_lines_the_tool_prints(fake_webui):
    """cli.md's sample for a downloaded fit: the same labelled lines, in the same order, as the tool prints for the
    documented command, with the same wording around the numbers, hashes and paths."""
    webui, _ = fake_webui
    sample = next(lines for language, lines in fenced_blocks(ROOT / "docs" / "cli.md")
                  if language == "text" and lines and lines[0].startswith("file      models/qwen35/theirs/"))
    args = ["inspect", "models/qwen35/theirs/rotation_theirs.safetensors", "--weights", "models/qwen35/qwen35_4b.safetensors"]
    r = _run([sys.executable, *LINUX.split()[1:2], *args], webui)
    assert r.returncode == 0, r.stderr

    def labelled(lines):
        out = []
        for line in lines:
            if line[:10].strip():
                out.append([line[:10].strip(), line[10:]])
            else:
                out[-1][1] += " " + line.strip()     # a wrapped line
        return out

    def wording(text):
        """The text with paths, hashes, numbers and the fit's own values taken out."""
        text = re.sub(r"\(Forge Neo tab \(sd-qwen35-anima\)\)|\(the command line\)", "(BY)", text)
        return re.sub(r"\S*/\S*|[0-9a-f]{10}|\d[\d.,:TZ-]*\d|\d", "_", text)

    printed, quoted = labelled(r.stdout.splitlines()), labelled(sample)
    assert [label for label, _ in printed] == [label for label, _ in quoted]
    for (label, theirs), (_, mine) in zip(printed, quoted):
        if label != "synthetic":                           # the fake WebUI's encoder is synthetic, the sample's not
            assert wording(theirs.removesuffix(" (synthetic)")) == wording(mine), (label, theirs, mine)


def test_cli_doc_names_every_command_and_option_and_the_prompt_file_rules():
    import argparse

    from lib_qwen35.alignment.corpus import PROMPT_FILE_RULES
    from lib_qwen35.cli.parser import build_parser

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        assert f"\n## {name}\n" in text, f"docs/cli.md has no section for {name}"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in text, f"docs/cli.md does not mention {name} {option}"
    assert PROMPT_FILE_RULES in text


def test_cli_doc_emphasis_table_is_what_the_tool_reads():
    from lib_qwen35.cli.prompt_syntax import prompt_text

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    header = re.search(r"\| `--emphasis` \| as in \| `([^|]+)` is read as \|", text)
    prompt = header.group(1).replace("\\\\", "\\")
    rows = re.findall(r"^\| `(comfy|a1111|none)`[^|]*\|[^|]*\| `([^|]+)` \|$", text, re.M)
    assert {syntax for syntax, _ in rows} == {"comfy", "a1111", "none"}
    for syntax, shown in rows:
        assert prompt_text(prompt, syntax) == shown, syntax
