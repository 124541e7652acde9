"""The real tokens of a right-padded batch [B, T]. The per-token work (the linears, the norms, the MLP, the residual
stream) runs on them alone, packed as rows [N, D]. The mixers (convolution, delta rule, attention) need the
sequence layout and see [B, T, ...], with zeros at the padded places. Every mixer is causal, so what they compute
at the padded places never reaches a real token.

A batch without padding (one prompt, or prompts of one length) packs and unpacks by a reshape, with no copy. In
a fit batch (32 prompts sorted by length) the padding is 9% of the positions on average and 31% in each chunk's last
batch (docs/performance.md). The linears, which are 90% of a forward, no longer compute it.
"""

from __future__ import annotations

import torch


class Rows:
    """Which of the B x T positions hold tokens (prompt i: its first lengths[i])."""

    def __init__(self, lengths: list[int], T: int, device=None):
        self.B, self.T = len(lengths), T
        self.count = sum(lengths)
        self.index = None      # flat positions of the real tokens; None: every position is one
        if self.count != self.B * T:
            real = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]           # [B, T]
            self.index = real.flatten().nonzero().squeeze(1).to(device)

    @classmethod
    def of(cls, ids: torch.Tensor, lengths: list[int] | None = None) -> Rows:
        """The rows of ids [B, T]; every position counts when lengths is None."""
        B, T = ids.shape
        return cls(list(lengths) if lengths is not None else [T] * B, T, ids.device)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, ...] -> [N, ...]: the real tokens' rows, in order."""
        flat = x.reshape(self.B * self.T, *x.shape[2:])
        return flat if self.index is None else flat.index_select(0, self.index)

    def unpack(self, y: torch.Tensor) -> torch.Tensor:
        """[N, ...] -> [B, T, ...], zeros at the padded places."""
        if self.index is None:
            return y.reshape(self.B, self.T, *y.shape[1:])
        out = y.new_zeros(self.B * self.T, *y.shape[1:])
        return out.index_copy_(0, self.index, y).view(self.B, self.T, *y.shape[1:])
