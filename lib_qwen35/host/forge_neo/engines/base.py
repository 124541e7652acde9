"""The interface every Forge Neo generation of Anima's text engine implements.

An engine generation is one way Forge Neo turns a prompt line into the Qwen3-0.6B hidden states that
Anima's LLM adapter reads. Each one has a *seam*: one method on an object the engine owns, called with
the Qwen3 token ids of one prompt line and returning the hidden states. We replace that method on the
instance (never the class), so with our extension off the stock method runs unchanged.

A generation module subclasses `EngineGeneration` and is listed in `engines.GENERATIONS`. It is picked
by what the engine object offers (`matches`), never by Forge's version string.
"""

from __future__ import annotations

import torch


class EngineGeneration:
    name = ""         # short name for status lines and errors: "legacy", "qwen06"
    engine_class = ""  # Forge's class name, for messages
    versions = ""     # which Forge Neo versions carry it (documentation only; never used to decide)
    seam_name = ""    # the method replaced on seam_owner(engine)

    def matches(self, engine) -> bool:
        """Does this object offer exactly this generation's seam and tokenizers?"""
        raise NotImplementedError

    def seam_owner(self, engine):
        """The object whose `seam_name` method is replaced (the engine itself or an object it owns)."""
        raise NotImplementedError

    def replace(self, engine, encode, *args, **kwargs):
        """The replacement seam. `encode(texts) -> [T_i, 1024] float32 CPU` per text is armed by the
        controller; this turns the ids the seam receives back into prompt texts and returns the states in
        the exact container, device and dtype the stock seam would."""
        raise NotImplementedError

    def qwen3_tokenizer(self, engine):
        """Forge's Hugging Face Qwen3 tokenizer (call with a list of texts, `.decode(ids)`)."""
        raise NotImplementedError

    def prompt_text(self, engine, prompt: str) -> str:
        """The text our encoder receives for `prompt`: Forge's own parsing, tokenizing and decoding."""
        raise NotImplementedError

    def stock_states(self, engine, batch_ids: list[list[int]]) -> torch.Tensor:
        """The stock Qwen3-0.6B states [B, L, 1024] for equally long id lists, through the class's
        method (never our instance patch): the alignment fit's targets."""
        raise NotImplementedError

    def output_format(self, engine) -> tuple[torch.device, torch.dtype]:
        """Device and dtype of what the stock seam returns."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.engine_class}.{self.seam_name} ({self.name}: {self.versions})"


def has_llm_adapter(engine) -> bool:
    """Only Anima's engines carry a T5 tokenizer and a text encoder with the LLM adapter
    (`preprocess_text_embeds`): Flux2/Klein, Krea2, Qwen-Image and Z-Image engines have neither."""
    if getattr(engine, "t5_tokenizer", None) is None:
        return False
    text_encoder = getattr(engine, "text_encoder", None)
    for owner in (text_encoder, getattr(text_encoder, "transformer", None)):
        if owner is not None and callable(getattr(owner, "preprocess_text_embeds", None)):
            return True
    return False


def method_params(cls, name: str) -> list[str] | None:
    """Parameter names of `cls.name` (without self), or None when it is missing or not inspectable."""
    import inspect

    fn = getattr(cls, name, None)
    if not callable(fn):
        return None
    try:
        return list(inspect.signature(fn).parameters)[1:]
    except (TypeError, ValueError):
        return None
