"""The replacement for `AnimaTextProcessingEngine.process_tokens`.

    batch of Qwen3 id lists ─ engine's Qwen3 tokenizer ─> texts ─ Qwen3.5 tokenizer ─> ids
        ─> Encoder.encode_ids (raw-embedding LRU; backbone only on a miss) ─> [T, 1024] head output
        ─> output stage (alignment, calibration, scale; fp32 on the CPU) ─> right-pad to the longest
        ─> [B, L, 1024] on the device / in the dtype the stock path returns

Forge then runs the LLM adapter (T5 ids as queries, cross-attending to these states), applies the T5-side
emphasis weights and pads to 512 rows, exactly as with the stock encoder.
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from lib_qwen35.checkpoint import file_identity
from lib_qwen35.errors import NonFiniteOutputError, OutputStageOverflowError

from . import host, messages, placement as placement_mod, status
from .text_recovery import QWEN3_PAD_ID, recover_text


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

    @property
    def weights_name(self) -> str:
        return os.path.basename(self.weights_path)

    def signature(self) -> tuple:
        """Changes whenever the conditioning we would produce can change (for Forge's cond cache)."""
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
    from lib_qwen35.output_stage import OutputStage

    alignment = holder.stage_file("alignment", run.alignment_path) if run.alignment_path else None
    calibration = holder.stage_file("calibration", run.calibration_path) if run.calibration_path else None
    return OutputStage(alignment=alignment, strength=run.alignment_strength, calibration=calibration, output_scale=run.output_scale)


def stock_output_format(engine) -> tuple[torch.device, torch.dtype]:
    """Device and dtype the stock `process_tokens` returns: those of the TE's token embeddings, which
    `process_embeds` looks up on `memory_management.text_encoder_device()` (probed with one pad id)."""
    mm = host.memory_management()
    device = torch.device(mm.text_encoder_device()) if mm is not None and hasattr(mm, "text_encoder_device") else torch.device("cpu")
    embeddings = None
    try:
        embeddings = engine.text_encoder.get_input_embeddings()
        probe = embeddings(torch.tensor([[QWEN3_PAD_ID]], device=device, dtype=torch.long))
        return probe.device, probe.dtype
    except Exception:
        weight = getattr(embeddings, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dtype in (torch.float16, torch.bfloat16, torch.float32):
            return device, weight.dtype
        dtype = mm.text_encoder_dtype() if mm is not None and hasattr(mm, "text_encoder_dtype") else torch.float32
        return device, dtype if dtype in (torch.float16, torch.bfloat16, torch.float32) else torch.float16


def make_handler(run: EncodeRun, holder):
    """The callable the hook routes to while this run is armed."""
    stage_cache = {}

    def handler(engine, batch_tokens, batch_multipliers):
        try:
            return encode_batch(engine, batch_tokens)
        except Exception as error:  # every failure names the extension and the file and says what to do
            if isinstance(error, OutputStageOverflowError) and error.stage != "input":
                wrapped = messages.output_stage_overflow(error)                 # names the step that overflowed
            elif isinstance(error, NonFiniteOutputError) and not str(error).startswith(messages.PREFIX):
                wrapped = messages.non_finite(run.weights_path, run.placement)   # the library's own NaN check
            else:
                wrapped = messages.encode_failed(run.weights_path, error)       # already ours: returned as is
            status.set_error(str(wrapped))
            messages.console(str(wrapped))
            if wrapped is error:
                raise
            raise wrapped from error

    def encode_batch(engine, batch_tokens):
        if "stage" not in stage_cache:
            stage_cache["stage"] = build_output_stage(run, holder)
        try:
            encoder = holder.encoder(run.weights_path, run.placement.dtype, run.placement.device.type == "cpu",
                                     run.encoder_cache_size, run.embedding_cache_size)
        except Exception as error:
            raise messages.weights_invalid(run.weights_path, error) from error

        started = time.perf_counter()  # encode time, without the one-off file load
        texts = [recover_text(tokens, engine.qwen_tokenizer) for tokens in batch_tokens]
        with placement_mod.on_compute_device(encoder, run.placement, run.weights_path):
            raws = [encoder.encode_ids(encoder.tokenize(text)) for text in texts]  # each [T_i, 1024]
        outs = [stage_cache["stage"].apply(raw.detach().to("cpu", torch.float32)) for raw in raws]  # checks finiteness

        device, dtype = stock_output_format(engine)
        z = pad_stack(outs).to(device=device, dtype=dtype)  # [B, L, 1024]
        status.record_encode(run, [o.shape[0] for o in outs], time.perf_counter() - started, encoder)
        return z

    return handler


def pad_stack(rows: list[torch.Tensor]) -> torch.Tensor:
    """[T_i, D] -> [B, max T, D], zero-padded on the right (Forge passes one prompt at a time)."""
    length = max(r.shape[0] for r in rows)
    out = rows[0].new_zeros((len(rows), length, rows[0].shape[-1]))
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out
