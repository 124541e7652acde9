"""The `corpus` command line: python -m lib_qwen35 corpus --out prompts.jsonl (export the built-in corpus, edit it,
pass it back with fit --prompts), or --manifest FILE (version, size, hash, counts)."""

from __future__ import annotations

import json

from ..alignment.corpus import (
    CORPUS_VERSION,
    DEFAULT_SIZE,
    check_jsonl_output,
    corpus_sha256,
    generate_corpus,
    manifest,
    write_jsonl,
)
from ..errors import PromptError
from ..files import safe_io


def _is_manifest(path) -> bool:
    data = json.loads(safe_io.read_text(path, "manifest", 1 << 20, PromptError))
    return isinstance(data, dict) and set(data) == {"version", "size", "sha256", "counts"}


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="FILE",
                        help="write the corpus as JSON lines ({prompt, category, style}), a prompt file for fit "
                             "--prompts (default: none; without --out or --manifest, print the first prompts)")
    parser.add_argument("--limit", type=int, default=DEFAULT_SIZE, metavar="N",
                        help="number of prompts (default: %(default)s)")
    parser.add_argument("--manifest", metavar="FILE",
                        help="write the manifest JSON: version, size, sha256, counts (default: none)")


def main(args) -> int:
    if args.out:
        check_jsonl_output(args.out)
    if args.manifest:
        args.manifest = safe_io.check_output(args.manifest, "manifest", ours=_is_manifest, error=PromptError)
    prompts = generate_corpus(args.limit)
    if args.out:
        write_jsonl(prompts, args.out)
    if args.manifest:
        safe_io.write_text_atomic(args.manifest, json.dumps(manifest(prompts), indent=1) + "\n")
    if not args.out and not args.manifest:
        for p in prompts[:14]:
            print(f"{p.category:<12} {p.style:<8} {p.text}")
    print(f"{CORPUS_VERSION}: {len(prompts)} prompts, sha256 {corpus_sha256(prompts)}")
    return 0
