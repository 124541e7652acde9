"""The held-out split of the alignment fit: which prompts the report measures on (the rest are fitted on)."""

from __future__ import annotations

import hashlib
import math

import torch

from .corpus import Prompt


def heldout_mask(prompts: list[Prompt], fraction: float = 0.1) -> torch.Tensor:
    """Bool[N]: the ceil(fraction * N) prompts whose SHA-256 of the text is smallest. Deterministic and
    independent of the order of the prompts and of the machine."""
    n = len(prompts)
    k = min(n, max(1, math.ceil(fraction * n))) if fraction > 0 else 0
    keys = sorted(range(n), key=lambda i: (hashlib.sha256(prompts[i].text.encode("utf-8")).digest(), i))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[keys[:k]] = True
    return mask
