"""The alignment prompt corpus: deterministic (pinned hash), large enough, every category and style,
and users' own prompt files."""

import json
from collections import Counter

import pytest

from repo import ROOT

from lib_qwen35.alignment.corpus import (
    CATEGORIES,
    CORPUS_VERSION,
    DEFAULT_SIZE,
    corpus_sha256,
    generate_corpus,
    load_prompts,
    manifest,
    read_prompt_file,
)
from lib_qwen35.errors import PromptError

DATA = ROOT / "alignment_data"


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus()


def test_matches_committed_manifest(corpus):
    """Same words, same RNG, same order on every Python: the hash in alignment_data/ pins it."""
    pinned = json.loads((DATA / "corpus_manifest.json").read_text())
    assert pinned["version"] == CORPUS_VERSION
    assert manifest(corpus) == pinned


def test_deterministic_and_prefix_stable(corpus):
    again = generate_corpus(500)
    assert again == corpus[:500]
    assert corpus_sha256(generate_corpus(500)) == corpus_sha256(again)


def test_size_unique_labels(corpus):
    assert len(corpus) == DEFAULT_SIZE >= 41277
    assert len({p.text for p in corpus}) == len(corpus)
    assert all(p.text.strip() == p.text and p.text for p in corpus)
    counts = Counter((p.category, p.style) for p in corpus)
    for cat in CATEGORIES:
        for style in ("tags", "natural"):
            assert counts[(cat, style)] >= 2900, (cat, style)
    assert set(p.category for p in corpus) == set(CATEGORIES)


def test_styles_look_right(corpus):
    for p in corpus[:700]:
        if p.style == "natural":
            assert p.text[0].isupper() and p.text.endswith("."), p.text
        else:
            assert "," in p.text and not p.text.endswith("."), p.text
            assert p.text == p.text.lower() or "score_" in p.text, p.text


def test_categories_carry_their_vocabulary(corpus):
    by_cat = {c: [p.text for p in corpus if p.category == c][:300] for c in CATEGORIES}
    assert sum("from above" in t or "from below" in t or "seen from" in t for t in by_cat["spatial"]) > 20
    assert sum("standing" in t or "sitting" in t for t in by_cat["pose"]) > 10
    assert sum("quality" in t or "masterpiece" in t for t in by_cat["meta"]) > 50
    multi_lens = [len(t.split(",")) for t in by_cat["multi"]]
    assert sum(multi_lens) / len(multi_lens) > sum(len(t.split(",")) for t in by_cat["pose"]) / 300


def test_any_prefix_is_balanced():
    c = Counter(p.category for p in generate_corpus(70))
    assert set(c.values()) == {10}


def test_prompt_files(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("# comment\n1girl, solo\n\n  a cat on a roof  \n", encoding="utf-8")
    got = read_prompt_file(txt)
    assert [(p.text, p.category) for p in got] == [("1girl, solo", "user"), ("a cat on a roof", "user")]
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"prompt": "1boy", "category": "character"}\n\n{"text": "a dog"}\n', encoding="utf-8")
    got = read_prompt_file(jl)
    assert [(p.text, p.category) for p in got] == [("1boy", "character"), ("a dog", "user")]
    # the committed examples parse
    assert len(read_prompt_file(DATA / "example_prompts.jsonl")) == 14
    assert len(read_prompt_file(DATA / "example_prompts.txt")) == 14
    prompts, cid = load_prompts(str(jl), limit=1)
    assert len(prompts) == 1 and cid.startswith("file:p.jsonl:")
    prompts, cid = load_prompts(None, limit=35)
    assert len(prompts) == 35 and cid == f"{CORPUS_VERSION}:35"


def test_prompt_file_errors(tmp_path):
    with pytest.raises(PromptError, match="prompt file was not found"):
        read_prompt_file(tmp_path / "absent.txt")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(PromptError, match=r"bad.jsonl:2: expected a JSON object"):
        read_prompt_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n", encoding="utf-8")
    with pytest.raises(PromptError, match="holds no prompts"):
        read_prompt_file(empty)
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"prompt": "  "}\n', encoding="utf-8")
    with pytest.raises(PromptError, match="empty"):
        read_prompt_file(blank)


def test_one_reader_rules_for_every_format(tmp_path):
    """Comments and blank lines in both formats, a BOM, any case of .jsonl; JSON lines in a .txt file are
    named as such (with the fix: rename it), not encoded as prompts."""
    jl = tmp_path / "p.JSONL"
    jl.write_bytes('\ufeff# exported prompts\n{"prompt": "1boy"}\n   # indented comment\n\n'.encode("utf-8"))
    assert [p.text for p in read_prompt_file(jl)] == ["1boy"]
    txt = tmp_path / "p.txt"
    txt.write_bytes("\ufeff# comment\n(masterpiece:1.2), 1girl\n".encode("utf-8"))
    assert [p.text for p in read_prompt_file(txt)] == ["(masterpiece:1.2), 1girl"]   # emphasis is the command's
    wrong = tmp_path / "exported.txt"
    wrong.write_text('{"prompt": "1boy", "category": "character"}\n', encoding="utf-8")
    with pytest.raises(PromptError, match=r"exported.txt:1: .*JSON.*Rename it to .jsonl"):
        read_prompt_file(wrong)
    braces = tmp_path / "dynamic.txt"
    braces.write_text("{red|blue} hair\n", encoding="utf-8")      # not JSON: an ordinary prompt
    assert [p.text for p in read_prompt_file(braces)] == ["{red|blue} hair"]
    only_comment = tmp_path / "c.jsonl"
    only_comment.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(PromptError, match="holds no prompts.*skipped"):
        read_prompt_file(only_comment)
