"""The gated delta rule: three interchangeable implementations, one contract.

    inputs  q, k  [B, T, H, K]   (already l2-normalised; q also scaled by K^-0.5)
            v     [B, T, H, V]   (H = value heads; key heads already repeated to match)
            g     [B, T, H]      log-decay (<= 0), beta [B, T, H] in (0, 1)
    output  o     [B, T, H, V]   float32 (fla's kernel, below, has its own contract)

    per head, state S [K, V] = 0;  for t:  S = exp(g_t) S ;  S += k_t (beta_t (v_t - S^T k_t))^T ;  o_t = S^T q_t

- `recurrent_gated_delta_rule`: the per-token loop above, verbatim. The reference; slow.
- `chunk_gated_delta_rule`: the same maths in chunks of 64 tokens (WY/UT form): a few matmuls per
  chunk plus a scan over chunks (`_scan_chunks`). The default on CPU, for fp32 compute, and on CUDA without fla.
  A prompt of one chunk (<= 128 tokens, so every fit batch) takes `_one_chunk`: the scan with its zero state
  removed, bit for bit the same.
- `fla_chunk_gated_delta_rule`: flash-linear-attention's Triton kernel (fla >= 0.5.0), used on CUDA for bf16/fp16
  compute when `fla` imports. It takes raw q/k (normalised in-kernel), grouped key heads (Hk < Hv, mapped in the
  kernel) and returns q's dtype. transformers 5.23 hands fla grouped heads too; 5.17 repeats them to Hv first.
Tests hold the torch kernels together (and fla to them on a GPU).
"""

from __future__ import annotations

import functools
import itertools

import torch
import torch.nn.functional as F


def recurrent_gated_delta_rule(q, k, v, g, beta):
    q, k, v, g, beta = (x.float().transpose(1, 2) for x in (q, k, v, g, beta))   # [B, H, T, ...]
    B, H, T, K = k.shape
    S = q.new_zeros(B, H, K, v.shape[-1])
    out = torch.empty_like(v)
    for t in range(T):
        S = S * g[:, :, t].exp()[..., None, None]
        err = v[:, :, t] - torch.einsum("bhkv,bhk->bhv", S, k[:, :, t])            # v_t - S^T k_t
        S = S + torch.einsum("bhk,bhv->bhkv", k[:, :, t], err * beta[:, :, t, None])
        out[:, :, t] = torch.einsum("bhkv,bhk->bhv", S, q[:, :, t])
    return out.transpose(1, 2)


def chunk_length(T: int, chunk_size: int = 64) -> int:
    """Short prompts (<= 2 chunks) run as ONE chunk padded to a multiple of 16: 77 tokens cost 80 rows
    instead of 128 and skip the scan. The maths is the same for any chunk length."""
    return -(-T // 16) * 16 if T <= 2 * chunk_size else chunk_size


def _prepare(q, k, v, g, beta, chunk_size):
    """[B, T, H, .] -> chunked [B, H, n, C, .] in fp32, zero-padded at the end (g = 0, beta = 0: padded steps
    change nothing), with what every chunk needs: the UT transform's matrix (I + A), the causal decay and the
    intra-chunk attention."""
    T = q.shape[1]
    q, k, v, g, beta = (x.float().transpose(1, 2) for x in (q, k, v, g, beta))    # [B, H, T, ...]
    pad = (-T) % chunk_size
    if pad:
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        g, beta = (F.pad(x, (0, pad)) for x in (g, beta))
    B, H, Tp, _ = k.shape
    n, C = Tp // chunk_size, chunk_size
    q, k, v = (x.reshape(B, H, n, C, -1) for x in (q, k, v))
    g, beta = g.reshape(B, H, n, C), beta.reshape(B, H, n, C)
    k_beta, v_beta = k * beta[..., None], v * beta[..., None]
    G = g.cumsum(-1)                                                    # [B,H,n,C] log decay from chunk start
    # exp(G_i - G_j) on and below the diagonal, 0 above. The upper triangle is clamped to 0 before the exp and zeroed
    # after it, not masked to -inf: torch's CPU exp over a -inf-masked matrix took ~3x as long. In place from here on:
    # fewer chunk-sized temporaries.
    decay = (G[..., :, None] - G[..., None, :]).clamp_(max=0).exp_().tril_()               # [.., C, C]
    # UT transform: (I + tril(beta K K^T decay, -1))^-1 applied to beta V (and, with a state, beta K exp(G))
    eye_A = (k_beta @ k.transpose(-1, -2)).mul_(decay).tril_(-1)                          # strictly lower: A
    eye_A.diagonal(dim1=-2, dim2=-1).fill_(1.0)                                            # I + A
    attn = (q @ k.transpose(-1, -2)).mul_(decay)                                            # [.., C, C] causal
    return q, k, v_beta, k_beta, G, eye_A, attn


def _ut_inverse(eye_A):
    """(I + A)^-1 [.., C, C] of the unit lower-triangular UT matrix: one triangular solve against the identity (C
    right-hand sides), so that the solves for v_beta and k_beta exp(G) become matmuls (on the CPU that is ~1.5x
    faster than solving for their 2V columns, and needs no concatenated copy)."""
    eye = torch.eye(eye_A.shape[-1], dtype=eye_A.dtype, device=eye_A.device).expand_as(eye_A)
    return torch.linalg.solve_triangular(eye_A, eye, upper=False, unitriangular=True)


def _scan_chunks(q, k, v_beta, k_beta, G, eye_A, attn):
    """Every chunk in turn, carrying the state S [K, V] from one to the next (the general case). The first chunk
    starts from S = 0, so its state reads drop out (v_new = u, out = attn @ u): the same values as reading a zero
    state. Each later chunk first brings S up to its start; the last chunk's state is never formed (not returned).
    Consumes k_beta (scaled in place)."""
    B, H, n, C, K = k.shape
    V = v_beta.shape[-1]
    inverse = _ut_inverse(eye_A)                                        # [B,H,n,C,C]
    u = inverse @ v_beta                                                # [B,H,n,C,V]
    exp_G = G[..., None].exp()
    w = inverse @ k_beta.mul_(exp_G)                                    # [B,H,n,C,K]
    q_dec = q * exp_G                                                   # reads the state at chunk start
    k_dec_T = (k * (G[..., -1:] - G).exp()[..., None]).transpose(-1, -2)   # writes decayed to chunk end [.., K, C]
    chunk_decay = G[..., -1].exp()[..., None, None]
    out = torch.empty(B, H, n, C, V, dtype=q.dtype, device=q.device)
    v_new = u[:, :, 0]
    out[:, :, 0] = attn[:, :, 0] @ v_new
    S = None
    for i in range(1, n):                                               # S: the state at chunk i's start
        written = k_dec_T[:, :, i - 1] @ v_new
        S = written if S is None else S * chunk_decay[:, :, i - 1] + written
        v_new = u[:, :, i] - w[:, :, i] @ S
        out[:, :, i] = q_dec[:, :, i] @ S + attn[:, :, i] @ v_new
    return out


def _one_chunk(q, k, v_beta, k_beta, G, eye_A, attn):
    """_scan_chunks for a single chunk: the state is zero throughout (it starts at zero and the final one is not
    returned), so v_new = u, out = attn @ u, and the state reads, the state update and w (which only meets the
    state) all drop out. Bit for bit _scan_chunks (tests/ops/test_delta_rule.py); what it saves: docs/performance.md."""
    return attn @ (_ut_inverse(eye_A) @ v_beta)


def chunk_gated_delta_rule(q, k, v, g, beta, chunk_size: int = 64):
    T = q.shape[1]
    parts = _prepare(q, k, v, g, beta, chunk_length(T, chunk_size))
    B, H, n, C, _ = parts[0].shape
    out = (_one_chunk if n == 1 else _scan_chunks)(*parts)             # short prompts, every fit batch: one chunk
    return out.reshape(B, H, n * C, -1)[:, :, :T].transpose(1, 2)


# fla < 0.5.0 accepts fewer key heads than value heads without an error but writes only part of the output
# (Qwen3.5 has 16 key heads for 32 value heads), so older versions are refused, not used.
FLA_MIN_VERSION = (0, 5, 0)


def _version_tuple(text: str) -> tuple[int, ...]:
    """'0.6.0' -> (0, 6, 0); '0.5.0rc1' -> (0, 5, 0); anything unreadable counts as 0."""
    parts = []
    for part in (text.split(".") + ["0", "0"])[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, part))
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@functools.lru_cache(maxsize=None)
def fla_problem() -> str | None:
    """Why fla's kernel cannot run in this process, or None when it can. Cached: a failing `import fla` (or the
    triton under it) takes seconds and would otherwise be retried on every Encoder.to()."""
    try:
        import fla
        import fla.ops.gated_delta_rule  # noqa: F401 - the module our kernel calls
    except Exception as e:   # noqa: BLE001 - any import failure means "do not use fla", with the reason
        if isinstance(e, ModuleNotFoundError) and e.name == "fla":
            return "fla not installed"
        return f"fla does not import ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]})"
    version, need = getattr(fla, "__version__", None), ".".join(map(str, FLA_MIN_VERSION))
    if not isinstance(version, str):
        return (f"fla has no version number, so it may predate {need} (grouped key heads need it); "
                "pip install -U fla-core")
    if _version_tuple(version) < FLA_MIN_VERSION:
        return f"fla {version} is older than {need} (grouped key heads need it); pip install -U fla-core"
    return None


def fla_available(device) -> bool:
    return torch.device(device).type == "cuda" and fla_problem() is None


def why_not_fla(device, dtype: torch.dtype | None = None) -> str | None:
    """For the status line: why 'auto' runs the torch kernel here (None when fla can run)."""
    if torch.device(device).type != "cuda":
        return f"fla needs CUDA, the encoder runs on {torch.device(device).type}"
    if dtype == torch.float32:
        return "fp32 compute keeps the exact kernel: fla would multiply in TF32"
    return fla_problem()


def fla_chunk_gated_delta_rule(q, k, v, g, beta):
    """fla's Triton kernel on RAW q, k [B,T,Hk,K]: l2norm and the default K^-0.5 scale happen in the kernel, and
    fla >= 0.5.0 maps value head h to key head h // (Hv/Hk) itself (older fla wrote only part of the output, so
    fla_available refuses it). v [B,T,Hv,V] and beta in the compute dtype, g fp32. Returns o [B,T,Hv,V] in q's
    dtype (bf16/fp16), not fp32. Unlike the two torch kernels above, q and k are not pre-normalised here."""
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule as fla_chunk

    o, _ = fla_chunk(q.contiguous(), k.contiguous(), v.contiguous(), g=g.float().contiguous(),
                     beta=beta.contiguous(), use_qk_l2norm_in_kernel=True)
    return o


KERNELS = {"recurrent": recurrent_gated_delta_rule, "chunk": chunk_gated_delta_rule,
           "fla": fla_chunk_gated_delta_rule}


def pick_kernel(name: str, device, dtype: torch.dtype | None = None) -> str:
    """'auto' -> fla on CUDA when importable and the compute dtype is bf16/fp16, else the chunked torch kernel.
    fp32 compute gets the chunked kernel: fla's tl.dot runs fp32 in TF32 on Ampere and newer (10 mantissa bits),
    and whoever asks for fp32 asks for the exact path. An explicit 'fla' is honoured where it can run; where it
    cannot (CPU, fla missing or too old) it falls back to 'chunk': the status line says why."""
    if name not in ("auto", *KERNELS):
        raise ValueError(f"unknown delta-rule kernel {name!r}; choose one of auto, {', '.join(KERNELS)}")
    if name == "auto" and dtype == torch.float32:
        return "chunk"
    if name in ("auto", "fla"):
        return "fla" if fla_available(device) else "chunk"
    return name
