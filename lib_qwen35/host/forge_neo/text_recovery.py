"""Qwen3 token ids (what reaches `process_tokens`) -> the prompt text, for re-tokenizing with Qwen3.5.

Forge's Anima engine tokenizes each emphasis segment with the Qwen3 tokenizer, concatenates the ids and,
for an empty prompt, inserts the pad id 151643 (<|endoftext|>). Byte-level BPE decodes losslessly, so
dropping the pad ids and decoding with the engine's own tokenizer gives back the prompt text with the
emphasis syntax removed (the weights live on the T5 side, which we do not touch).
"""

from __future__ import annotations

from lib_qwen35.files.tokenizer import QWEN3_ENDOFTEXT_ID as QWEN3_PAD_ID


def recover_text(token_ids, qwen3_tokenizer) -> str:
    ids = [int(t) for t in token_ids if _is_token_id(t) and int(t) != QWEN3_PAD_ID]
    if not ids:
        return ""
    try:
        return qwen3_tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    except TypeError:  # a tokenizer whose decode takes the ids only (tokenizers / lib_qwen35 objects)
        return qwen3_tokenizer.decode(ids)


def _is_token_id(token) -> bool:
    """Forge lets textual-inversion embeddings ride along as non-int entries; they have no text."""
    try:
        int(token)
        return True
    except (TypeError, ValueError, RuntimeError):
        return False
