"""The product card's embedding metrics, defined precisely (docs/library.md, "Metrics").

For prompts p with token vectors x_{p,t} in R^D:
  global_mean      mean of every element of every x_{p,t}
  global_std       standard deviation of those elements (population, ddof=0)
  token_l2         mean over all tokens of ||x_{p,t}||_2
  token_diversity  mean over prompts with >= 2 tokens of 1 - (mean pairwise cosine of distinct tokens)
  cross_prompt_similarity  mean pairwise cosine between the prompts' mean-pooled vectors (needs >= 2 prompts)
A collapsed encoder (every token the same vector) has token_diversity ~ 0 and cross similarity ~ 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _mean_offdiag_cosine(x: torch.Tensor) -> float:
    """x [N, D], N >= 2 -> mean cosine over ordered pairs i != j."""
    u = F.normalize(x.double(), dim=-1)
    sim = u @ u.T
    n = x.shape[0]
    return ((sim.sum() - sim.diagonal().sum()) / (n * (n - 1))).item()


def prompt_metrics(embeddings: list[torch.Tensor]) -> dict:
    """embeddings: one [T_p, D] tensor per prompt."""
    if not embeddings:
        raise ValueError("prompt_metrics needs at least one prompt")
    flat = torch.cat([e.reshape(-1, e.shape[-1]).double().cpu() for e in embeddings])
    div = [1.0 - _mean_offdiag_cosine(e.cpu()) for e in embeddings if e.shape[0] >= 2]
    pooled = torch.stack([e.double().cpu().mean(0) for e in embeddings])
    return {
        "prompts": len(embeddings),
        "tokens": int(flat.shape[0]),
        "global_mean": flat.mean().item(),
        "global_std": flat.std(unbiased=False).item(),
        "token_l2": flat.norm(dim=-1).mean().item(),
        "token_diversity": sum(div) / len(div) if div else math.nan,
        "cross_prompt_similarity": _mean_offdiag_cosine(pooled) if len(embeddings) >= 2 else math.nan,
    }


def format_metrics(m: dict) -> str:
    keys = ["prompts", "tokens", "global_mean", "global_std", "token_l2", "token_diversity", "cross_prompt_similarity"]
    def fmt(k):
        v = m[k]
        if isinstance(v, float) and math.isnan(v):
            return "n/a (needs 2+ tokens)" if k == "token_diversity" else "n/a (needs 2+ prompts)"
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    return "\n".join(f"  {k:<24} {fmt(k)}" for k in keys)
