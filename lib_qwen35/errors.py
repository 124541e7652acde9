"""The exceptions the library raises. Each message says what was found, what was expected and the fix."""


class Qwen35Error(Exception):
    """Base class: anything the library reports to a user on purpose."""


class WeightsFileError(Qwen35Error):
    """The weights file is missing, unreadable, truncated, of another model, or has bad tensors."""


class OutputStageFileError(Qwen35Error):
    """An alignment or calibration file is missing or malformed (shapes, keys, non-finite, not orthogonal)."""


class PromptError(Qwen35Error):
    """A prompt (or its token ids) cannot be encoded."""


class NonFiniteOutputError(Qwen35Error):
    """The encoder produced NaN/Inf (usually fp16 overflow or corrupt weights)."""


class OutputStageOverflowError(NonFiniteOutputError):
    """Finite encoder output became NaN/Inf in the output stage; `stage` names the step (alignment,
    calibration, output_scale) whose values are too large."""

    def __init__(self, message: str, stage: str):
        super().__init__(message)
        self.stage = stage


class InvalidArgumentError(Qwen35Error, ValueError):
    """A public API argument has the wrong type or range; the message names it and what is allowed."""


class EncoderOutOfMemoryError(Qwen35Error):
    """The device ran out of memory while encoding (the message says how to get around it)."""


class TokenizerFileError(Qwen35Error):
    """A bundled tokenizer file is missing, corrupt or of the wrong model."""


class FitCancelled(Qwen35Error):
    """The fit was cancelled (cancel flag set); the embedding chunks done so far are kept for a resume."""


class FitInputError(Qwen35Error):
    """The embeddings cannot be fitted (sizes disagree, too few prompts for the dimension, ...)."""
