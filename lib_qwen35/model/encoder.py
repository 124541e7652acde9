"""The public encoder: a weights file -> prompt -> [T, 1024] embeddings for Anima's LLM adapter.

    text --tokenize--> Qwen3.5 ids --encode_ids--> head output [T,1024] (LRU-cached) --OutputStage--> [T,1024]
"""

from __future__ import annotations

import operator
import threading
import time

import torch

from ..errors import EncoderOutOfMemoryError, InvalidArgumentError, NonFiniteOutputError, WeightsFileError
from ..files.checkpoint import checkpoint_identity, load_tensors, loaded_identity, read_header, short_hash
from ..files.tokenizer import QWEN35_ENDOFTEXT_ID, load_qwen35_tokenizer
from ..ops import fp8_recode
from ..ops.cuda_graphs import GraphRunner
from ..ops.delta_rule import KERNELS, pick_kernel, why_not_fla
from ..ops.fp8_matmul import REQUESTS as FP8_REQUESTS
from ..ops.fp8_matmul import choose_mode as choose_fp8_mode
from . import embedding_cache, encoder_cache
from .config import HEAD_KEYS, infer_layout
from .devices import check_device, resolve_dtype
from .linear import FP8_DTYPES, disable_fp8_matmul, enable_fp8_matmul, set_gemm_dtype, use_cpu_code
from .output_stage import Alignment, Calibration, OutputStage
from .qwen35 import HeadRMSNorm, Qwen35Backbone
from .text_encoder import TextEncoder


def check_batch_size(value, name: str = "max_batch") -> int:
    """A batch size: an int >= 1 (not a bool, not 2.5)."""
    try:
        n = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}") from None
    if isinstance(value, bool) or n < 1:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}")
    return n


def _check_options(options: dict) -> None:
    """Before any file is read: the options given that would otherwise fail after a long load."""
    for name, allowed in (("kernel", ("auto", *KERNELS)), ("fp8_matmul", FP8_REQUESTS),
                          ("head_norm", HeadRMSNorm.PARAMETERISATIONS)):
        value = options.get(name)
        if name in options and (not isinstance(value, str) or value not in allowed):
            raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    if "cpu_code" in options and not isinstance(options["cpu_code"], bool):
        raise InvalidArgumentError(f"cpu_code must be True or False, got {options['cpu_code']!r}")
    upcast_cache_bytes = options.get("upcast_cache_bytes")
    if upcast_cache_bytes is not None and (isinstance(upcast_cache_bytes, bool) or
                                           not isinstance(upcast_cache_bytes, int) or upcast_cache_bytes < 0):
        raise InvalidArgumentError(f"upcast_cache_bytes must be an integer >= 0 (or None), got {upcast_cache_bytes!r}")


def _check_finite(name: str, t: torch.Tensor, path: str) -> None:
    def bad(part):
        if t.dtype == torch.float8_e4m3fn:    # E4M3FN has no Inf; NaN is S.1111.111
            return ((part.view(torch.uint8) & 0x7F) == 0x7F).any()
        if t.dtype == torch.float8_e5m2:
            return ((part.view(torch.uint8) & 0x7C) == 0x7C).any()
        return ~torch.isfinite(part).all()

    # in slices of 16M elements: the embedding alone would need a 635 MB mask in one go
    if any(bool(bad(part)) for part in t.reshape(-1).split(1 << 24)):
        raise WeightsFileError(f"{path}: tensor {name} contains NaN/Inf values; the file is corrupt. Re-download it.")


class Encoder(TextEncoder):
    """A loaded Qwen3.5 encoder. Build with `load_encoder` (cached) rather than directly. Prompts and ids as
    text_encoder.py says; encode_batch gives the head output, before the output stage."""

    ENDOFTEXT_ID = QWEN35_ENDOFTEXT_ID   # the empty prompt: the Qwen3.5 twin of the pad token stock Forge feeds Qwen3

    def __init__(self, path, device="cpu", dtype=None, kernel: str = "auto", head_norm: str = "exp",
                 upcast_cache_bytes: int | None = None, cuda_graphs: bool = True, fp8_matmul: str = "off",
                 cpu_code: bool = True):
        """cpu_code: while on the CPU (bf16 or fp32 matmuls), keep the E4M3 weights in the CPU's own code
        (ops/fp8_recode.py: a cheaper decode; 2-5 s at load and at each return to the CPU). Off for an encoder that
        only passes through RAM on its way to a GPU."""
        self.path = str(path)
        t0 = time.perf_counter()
        _check_options({"kernel": kernel, "head_norm": head_norm, "upcast_cache_bytes": upcast_cache_bytes,
                        "fp8_matmul": fp8_matmul, "cpu_code": cpu_code})
        self.device = check_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        infos = read_header(self.path)
        layout = infer_layout(infos, self.path)
        self.config = layout.config
        # The files whose headers were read; load_tensors checks it reads exactly those.
        self.identity = loaded_identity(infos)
        # Canonical names: 'layers.3.self_attn.q_proj.weight', 'head.norm.0.weight', ...
        head_names = {layout.head_prefix + k: "head." + k for k in HEAD_KEYS} if layout.head_prefix is not None else {}
        rename = {n: head_names.get(n, n[len(layout.prefix):]) for n in layout.expected}
        # Straight onto the target device (a GPU load skips the host copy); FP8 stays FP8. Owned memory, not
        # a mapping of the file: a later truncation or rewrite of the file cannot reach these weights.
        tensors = load_tensors(infos, list(rename), device=self.device)
        self._short_hash = short_hash(self.path)
        if checkpoint_identity(self.path) != self.identity:
            raise WeightsFileError(f"{self.path}: the weights file changed while it was being loaded (a copy or "
                                   f"download into the same path?). Wait until it finishes, then try again.")
        for n, t in tensors.items():
            _check_finite(n, t, self.path)
        weights = {rename[n]: tensors.pop(n) for n in list(tensors)}
        self.kernel_request = kernel
        self.kernel = pick_kernel(kernel, self.device, self.dtype)
        self.head_norm = head_norm
        self.backbone = Qwen35Backbone(self.config, weights, kernel=self.kernel, head_norm=head_norm).eval()
        self.backbone.to(self.device)     # the RoPE table and anything created on the CPU
        set_gemm_dtype(self.backbone, self.dtype)   # the matmuls' dtype; the rest: activation_dtype (fp32 on CPU)
        if upcast_cache_bytes is None:   # the blocked CPU decode is a small fraction of the matmul: copies cost RAM
            upcast_cache_bytes = 0      # for almost nothing (docs/performance.md); on a GPU a move would drop them
        self.upcast_cache_bytes = upcast_cache_bytes
        self.backbone.cache_upcasts(self.dtype, upcast_cache_bytes)
        self.cuda_graphs_requested, self.fp8_requested = bool(cuda_graphs), fp8_matmul
        self._setup_fast_path()
        self.cpu_code = cpu_code
        self._use_cpu_code()
        self.load_seconds = time.perf_counter() - t0
        self.stats = {"backbone_runs": 0, "cache_hits": 0, "last_encode_ms": None, "last_tokens": None}
        self._lock = threading.Lock()

    # -- properties -------------------------------------------------------------------------------
    def _load_tokenizer(self):
        return load_qwen35_tokenizer()

    @property
    def output_size(self) -> int:
        return self.config.output_size

    @property
    def weights_dtype(self) -> str:
        dts = {b.dtype for b in self.backbone.buffers() if b.dim() == 2}
        if dts & {*FP8_DTYPES, fp8_recode.DTYPE}:       # E4M3, or E4M3 in the CPU's own code
            return "fp8"
        return ",".join(sorted(str(d).replace("torch.", "") for d in dts))

    @property
    def _emb_key(self) -> tuple:
        """The embedding-cache key: everything that changes the numbers (file, compute dtype and the arithmetic
        around it, head parameterisation, delta-rule kernel, FP8 matmul mode, device type), read at each use
        because to() and the fast path change some of them. CUDA graphs and batching change rounding only."""
        return (self.identity, str(self.dtype), self.numerics, self.head_norm, self.kernel, self.fp8_mode,
                self.device.type)

    def to(self, device) -> Encoder:
        """Move the weights (FP8 stays FP8). Upcast copies are rebuilt lazily only on CPU."""
        device = check_device(device)
        with self._lock:
            if device != self.device:
                self.backbone.to(device)
                self.device = device
                if device.type == "cpu" and self.upcast_cache_bytes:
                    self.backbone.cache_upcasts(self.dtype, self.upcast_cache_bytes)
                self.kernel = pick_kernel(self.kernel_request, device, self.dtype)
                self.backbone.set_kernel(self.kernel)
                self._setup_fast_path()      # graphs bake in device, kernel and FP8 mode
                self._use_cpu_code()         # back on the CPU: the move gave the weights back as E4M3
        return self

    def _use_cpu_code(self) -> None:
        """Computing on the CPU: E4M3 weights in the CPU's own code (StoredLinear.use_cpu_code)."""
        if self.cpu_code and self.device.type == "cpu":
            use_cpu_code(self.backbone)

    def _setup_fast_path(self) -> None:
        """(Re)build the GPU fast path for the current device; every choice keeps a reason for the status line."""
        disable_fp8_matmul(self.backbone)
        self.fp8_mode, self.fp8_status = choose_fp8_mode(self.device, self.dtype, self.fp8_requested)
        if self.fp8_mode is not None:
            enable_fp8_matmul(self.backbone, self.fp8_mode)
        if not self.cuda_graphs_requested:
            self._graphs, self._graphs_off = None, "CUDA graphs off (requested)"
        elif self.fp8_mode == "per_tensor":   # its scale spans the padded bucket: results would depend on it
            self._graphs, self._graphs_off = None, "CUDA graphs off: per-tensor FP8 scaling needs exact shapes"
        elif GraphRunner.available(self.device):
            self._graphs, self._graphs_off = GraphRunner(self.backbone, self.activation_dtype), None
        else:
            self._graphs, self._graphs_off = None, GraphRunner.unavailable_reason(self.device)

    def set_cuda_graphs(self, enabled: bool) -> None:
        """Graphs pay off only while the weights stay on the GPU (each move to a device recaptures them),
        so a host that moves the encoder in and out per generation turns them off."""
        if bool(enabled) != self.cuda_graphs_requested:
            with self._lock:
                self.cuda_graphs_requested = bool(enabled)
                self._setup_fast_path()

    def fast_path_status(self) -> str:
        """One line: delta-rule kernel; FP8 matmul or upcast (and why); CUDA graphs (captured shapes / why off)."""
        kernel = {"fla": "fla delta rule", "chunk": "torch chunked delta rule",
                  "recurrent": "per-token delta rule"}.get(self.kernel, self.kernel)
        if self.kernel_request in ("auto", "fla") and self.kernel != "fla" and self.device.type == "cuda":
            auto_dtype = self.dtype if self.kernel_request == "auto" else None   # an explicit 'fla' ignores it
            kernel += f" ({why_not_fla(self.device, auto_dtype)})"
        graphs = self._graphs.describe() if self._graphs is not None else self._graphs_off
        return f"{kernel}; {self.fp8_status}; {graphs}"

    # -- ids -> head output -----------------------------------------------------------------------
    @torch.inference_mode()
    def _run(self, batch: list[list[int]]) -> list[torch.Tensor]:
        """One right-padded forward for several prompts. Causal mixers => outputs at real positions are exact."""
        T = max(len(x) for x in batch)
        ids = torch.zeros(len(batch), T, dtype=torch.long)
        for i, x in enumerate(batch):
            ids[i, : len(x)] = torch.tensor(x)
        t0 = time.perf_counter()
        with self._lock:
            try:
                ids = ids.to(self.device)
                if self._graphs is not None:       # fixed shapes: the padded batch as it is
                    out = self._graphs(ids)
                else:                              # the per-token work on the real tokens only (packing.py)
                    out = self.backbone(ids, self.activation_dtype, lengths=[len(x) for x in batch])
            except torch.cuda.OutOfMemoryError as e:
                raise EncoderOutOfMemoryError(f"Out of GPU memory encoding {len(batch)}x{T} tokens with the Qwen3.5 "
                                              f"encoder. Encode on CPU, lower the batch, or free VRAM (unload other "
                                              f"models).") from e
        out = out.float()
        if not torch.isfinite(out).all():
            fix = ("fp16 overflows easily: use bf16 or fp32" if self.dtype == torch.float16 else
                   "bf16 and fp32 do not overflow with sound weights, so the weights file holds values no trained "
                   "encoder has (damaged, or another model): re-download it")
            raise NonFiniteOutputError(f"{self.path}: the encoder produced NaN/Inf in "
                                       f"{str(self.dtype).replace('torch.', '')}; {fix}.")
        self.stats["backbone_runs"] += 1
        self.stats["last_encode_ms"] = (time.perf_counter() - t0) * 1e3
        self.stats["last_tokens"] = T
        self.stats["fast_path"] = self.fast_path_status()
        if len(batch) == 1:
            return [out[0]]
        return [out[i, : len(x)] for i, x in enumerate(batch)]

    def encode_batch(self, batch_ids: list[list[int]], max_batch: int = 16,
                     use_cache: bool = True) -> list[torch.Tensor]:
        """Head outputs for several prompts, [T_i, D] float32 each; cached ones are not recomputed.
        use_cache=False (bulk work such as the alignment fit) neither reads nor fills the embedding LRU.
        Every result is the caller's: a plain tensor with its own storage, to modify in place at will."""
        max_batch = check_batch_size(max_batch)
        batch_ids = [self.check_ids(x) for x in batch_ids]
        if self.fp8_mode == "per_tensor":   # one activation scale per forward: batching would mix the prompts
            max_batch = 1
        out: list = [None] * len(batch_ids)
        todo = []
        key = self._emb_key
        for i, ids in enumerate(batch_ids):
            hit = embedding_cache.EMBEDDINGS.get((key, tuple(ids))) if use_cache else None
            if hit is not None:
                self.stats["cache_hits"] += 1
                out[i] = hit.to(self.device, copy=True)   # the caller may modify it in place
            else:
                todo.append(i)
        todo.sort(key=lambda i: len(batch_ids[i]))     # similar lengths together: less padding
        for s in range(0, len(todo), max_batch):
            group = todo[s: s + max_batch]
            embs = self._run([batch_ids[i] for i in group])
            store = use_cache and self._emb_key == key     # not if a concurrent to() changed the numbers meanwhile
            for i, emb in zip(group, embs):
                if store:
                    embedding_cache.EMBEDDINGS.put((key, tuple(batch_ids[i])), emb)
                out[i] = emb.clone()   # outside inference mode: a normal tensor, not a view of the batch
        return out

    def encode(self, text: str, alignment: Alignment | str | None = None, calibration: Calibration | str | None = None,
               output_scale: float = 1.0, strength: float = 1.0) -> torch.Tensor:
        """Prompt -> [T, D] after the output stage. `alignment`/`calibration` may be objects or file paths."""
        if isinstance(alignment, str):
            alignment = Alignment.load(alignment)
        if isinstance(calibration, str):
            calibration = Calibration.load(calibration)
        stage = OutputStage(alignment=alignment, strength=strength, calibration=calibration, output_scale=output_scale)
        return stage.apply(self.encode_ids(self.tokenize(text)))


def load_encoder(path, device="cpu", dtype=None, **options) -> Encoder:
    """Load (or reuse) the encoder for `path`. Options: kernel ('auto'|'chunk'|'recurrent'|'fla'),
    head_norm ('exp'|'one_plus'), upcast_cache_bytes, cuda_graphs (True), fp8_matmul ('off'|'auto'|...).
    Reused while the file (path, inode, size, mtime, ctime), dtype and options are the same (encoder_cache.py); a
    different device moves the cached encoder (FP8 stays FP8) instead of reloading it."""
    device = check_device(device)
    dtype = resolve_dtype(dtype, device)
    _check_options(options)
    try:
        settings = (str(dtype), tuple(sorted(options.items())))
        hash(settings)
    except TypeError:
        raise InvalidArgumentError(f"encoder options must be plain values (str, int, bool), got {options!r}") from None
    return encoder_cache.QWEN35.get(path, settings, device,
                                    load=lambda: Encoder(path, device=device, dtype=dtype, **options),
                                    check=lambda: infer_layout(read_header(path), str(path)))
