"""What both text encoders promise, the 4B `encoder.Encoder` and the stock 0.6B `qwen3.Qwen3Encoder`, which the
alignment fit treats as interchangeable:

    tokenize(text)        a str, valid Unicode; no BOS/EOS; an empty prompt gives the empty-prompt ids
                          ([<|endoftext|>]: 248044 for Qwen3.5, 151643 for Qwen3, as stock Forge feeds Qwen3)
    encode_ids(ids)       one prompt's ids -> [T, D] float32 (= encode_batch([ids])[0])
    encode_batch(batch)   several prompts' ids -> a list of [T_i, D] float32; every id list is checked alike:
                          integers only (operator.index: 7 and numpy/torch integers, not 1.7 or "7"), inside
                          the vocabulary, at most MAX_TOKENS; an empty list means the empty prompt
    identity, short_hash, path, device, dtype, config (config.vocab_size)
    activation_dtype, numerics   what the CPU's mixed arithmetic means here (model/devices.py)

Subclasses give ENDOFTEXT_ID, `_load_tokenizer()` and `encode_batch` (which runs `check_ids` on each list).
"""

from __future__ import annotations

import operator

from ..errors import PromptError
from . import devices

MAX_TOKENS = 131072           # far beyond any prompt; protects against runaway inputs


def check_text(text) -> str:
    """A prompt: a str that is valid Unicode (a command-line argument in another encoding is not)."""
    if not isinstance(text, str):
        raise PromptError(f"prompt must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PromptError("prompt contains text that is not valid Unicode (undecodable bytes, e.g. a "
                          "command-line argument in another encoding); pass UTF-8 text") from None
    return text


def check_ids(ids, vocab_size: int, empty_prompt_ids: list[int]) -> list[int]:
    """One prompt's token ids as a list of ints, or a PromptError that says what is wrong."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise PromptError(f"token ids must be a list of integers (from tokenize(text)), got "
                          f"{type(ids).__name__}; to encode text, use encode(text)")
    try:
        ids = [operator.index(i) for i in ids]       # ints (or numpy/torch integers); 1.7 is not an id
    except TypeError:
        raise PromptError(f"token ids must be integers, got {list(ids)[:5]}...") from None
    if not ids:
        return list(empty_prompt_ids)
    if len(ids) > MAX_TOKENS:
        raise PromptError(f"prompt has {len(ids)} tokens; the limit is {MAX_TOKENS}.")
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise PromptError(f"token id(s) {bad[:5]} outside the vocabulary [0, {vocab_size}).")
    return ids


class TextEncoder:
    """The shared half of the two encoders: text -> ids, and the checks every id list goes through."""

    ENDOFTEXT_ID: int     # the vocabulary's <|endoftext|>
    _tokenizer = None     # loaded on first use (or given, e.g. a SmallVocabTokenizer for a synthetic checkpoint)

    @property
    def empty_prompt_ids(self) -> list[int]:
        """What an empty prompt encodes as: [<|endoftext|>] (a tokenizer that folds ids says its own)."""
        return [getattr(self._tokenizer, "endoftext_id", self.ENDOFTEXT_ID)]

    def _load_tokenizer(self):
        raise NotImplementedError

    @property
    def short_hash(self) -> str:
        return self._short_hash          # computed while loading, from the same file

    @property
    def activation_dtype(self):
        """What everything but the matmuls computes in here: fp32 on the CPU, the compute dtype elsewhere."""
        return devices.activation_dtype(self.device, self.dtype)

    @property
    def numerics(self) -> str:
        """'' where everything computes in `dtype`, else the mixed arithmetic's name (devices.numerics_tag)."""
        return devices.numerics_tag(self.device, self.dtype)

    def tokenize(self, text: str) -> list[int]:
        check_text(text)
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer()
        return list(self._tokenizer.encode(text)) or self.empty_prompt_ids

    def check_ids(self, ids) -> list[int]:
        return check_ids(ids, self.config.vocab_size, self.empty_prompt_ids)

    def encode_batch(self, batch) -> list:
        raise NotImplementedError

    def encode_ids(self, ids):
        """One prompt's ids -> [T, D] float32 on the encoder's device."""
        return self.encode_batch([ids])[0]
