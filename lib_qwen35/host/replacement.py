"""What a seam patch computes while a generation is armed, whatever the WebUI and its seam:

    prompt texts (Forge Neo: recovered from the Qwen3 ids its engine received; SD.Next: the pipeline's prompts)
        ─ Qwen3.5 tokenizer ─> ids (optionally cut to max_tokens, padded to the batch's longest)
        ─> Encoder.encode_ids, one prompt at a time (raw-embedding LRU; backbone only on a miss)
        ─> [T, 1024] head output ─> output stage (alignment, calibration, scale; fp32 on the CPU)
        ─> one [T_i, 1024] float32 CPU tensor per text

One forward per prompt, never a batched one: a batched GEMM may round differently, and a prompt must give the
same bits alone as in a batch (an image reproduced from its infotext).

The WebUI's package then puts them in its seam's format (device, dtype, padding, mask), and the WebUI runs
the LLM adapter (T5 ids as queries, cross-attending to these states) and pads to 512 rows, exactly as
with the stock encoder.

Batches (SD.Next encodes a batch's prompts in one call): stock pads every prompt's Qwen3 ids to the
longest with the pad token and the adapter attends to the encoder's states at those positions (it gets
no mask). `pad_to_longest` does the same with our encoder: ids padded with Qwen3.5's <|endoftext|> to the
batch's longest, and its (causal) states there are kept, so real positions equal the prompt's alone.
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from lib_qwen35.errors import NonFiniteOutputError, OutputStageOverflowError
from lib_qwen35.files.checkpoint import file_identity
from lib_qwen35.files.tokenizer import QWEN35_ENDOFTEXT_ID
from lib_qwen35.model.output_stage import OutputStage

from . import messages, status
from . import placement as placement_mod

QWEN35_PAD_ID = QWEN35_ENDOFTEXT_ID


@dataclasses.dataclass(frozen=True)
class EncodeRun:
    """Everything one generation needs to encode; built by the controller in Script.process()."""

    weights_path: str
    weights_identity: str
    weights_hash: str
    alignment_path: str | None
    alignment_strength: float
    calibration_path: str | None
    output_scale: float
    placement: placement_mod.Placement
    encoder_cache_size: int = 1
    embedding_cache_size: int | None = None
    alignment_hash: str | None = None       # content hash of the loaded alignment (infotext, status)
    calibration_hash: str | None = None
    provenance: tuple = ()                  # alignment.provenance.Verdict of the files in use (status, console)

    @property
    def weights_name(self) -> str:
        return os.path.basename(self.weights_path)

    @property
    def warnings(self) -> tuple:
        return tuple(v for v in self.provenance if v.level == "warn")

    def signature(self) -> tuple:
        """Changes whenever the conditioning we would produce can change (for the WebUI's caches)."""
        return (
            "qwen35",
            self.weights_identity,
            self.alignment_path and (file_identity(self.alignment_path), round(self.alignment_strength, 6)),
            self.calibration_path and file_identity(self.calibration_path),
            round(self.output_scale, 6),
            str(self.placement.device),
            str(self.placement.dtype),
        )


def build_output_stage(run: EncodeRun, holder):
    """The library's OutputStage for this run (files loaded once per identity by the holder)."""
    alignment = holder.stage_file("alignment", run.alignment_path) if run.alignment_path else None
    calibration = holder.stage_file("calibration", run.calibration_path) if run.calibration_path else None
    return OutputStage(alignment=alignment, strength=run.alignment_strength, calibration=calibration,
                       output_scale=run.output_scale)


def make_encode(run: EncodeRun, holder):
    """The `encode(texts, pad_to_longest=False, max_tokens=None)` a seam patch routes to while this run is
    armed. The patch hands any exception raised while replacing (recovering the text, encoding,
    formatting) to `encode.report`."""
    stage_cache = {}

    def report(error: Exception) -> Exception:
        """The error to raise instead: it names the extension and the file and says what to do."""
        if isinstance(error, OutputStageOverflowError) and error.stage != "input":
            wrapped = messages.output_stage_overflow(error)                 # names the step that overflowed
        elif isinstance(error, NonFiniteOutputError) and not str(error).startswith(messages.PREFIX):
            wrapped = messages.non_finite(run.weights_path, run.placement)   # the library's own NaN check
        else:
            wrapped = messages.encode_failed(run.weights_path, error)       # already ours: returned as is
        status.set_error(str(wrapped))
        messages.console(str(wrapped))
        return wrapped

    def encode_texts(texts, pad_to_longest: bool = False, max_tokens: int | None = None):
        if "stage" not in stage_cache:
            stage_cache["stage"] = build_output_stage(run, holder)
        try:
            encoder = holder.encoder(run.weights_path, run.placement.dtype, run.placement.device.type == "cpu",
                                     run.encoder_cache_size, run.embedding_cache_size)
        except Exception as error:
            raise messages.weights_invalid(run.weights_path, error) from error

        started = time.perf_counter()  # encode time, without the one-off file load
        ids = [encoder.tokenize(text) for text in texts]
        if max_tokens is not None:
            ids = [row[: max(1, int(max_tokens))] for row in ids]   # as the stock tokenizer's truncation
        counts = [len(row) for row in ids]
        if pad_to_longest:
            longest = max(counts)
            ids = [row + [QWEN35_PAD_ID] * (longest - len(row)) for row in ids]
        with placement_mod.on_compute_device(encoder, run.placement, run.weights_path):
            raws = [encoder.encode_ids(row) for row in ids]   # one forward per prompt (above); each [T_i, 1024]
        outs = [stage_cache["stage"].apply(raw.detach().to("cpu", torch.float32)) for raw in raws]  # checks finiteness
        status.record_encode(run, counts, time.perf_counter() - started, encoder)
        return outs

    encode_texts.report = report
    return encode_texts
