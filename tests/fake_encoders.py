"""Fast stand-ins for the two encoders the alignment fit reads (a toy 4B and a 0.6B that is it rotated and shifted),
for tests that need an encoder pair without loading weights; and pooled pairs with a known rotation."""

import torch


def random_orthogonal(d, gen):
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


class FakeEncoder:
    """Deterministic toy encoder: char-code embedding table + a fixed linear map; 0.6B = rotated 4B + shift."""

    def __init__(self, d=16, seed=0, identity="fake", rotate=None, nan_on=None, width=None):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(128, d, generator=g)
        self.rotate, self.nan_on = rotate, nan_on
        self.identity, self.dtype, self.device = identity, torch.float32, torch.device("cpu")
        self.width = width
        self.calls = 0

    def tokenize(self, text):
        return [ord(c) % 128 for c in text] or [0]

    def encode_batch(self, batch):
        self.calls += 1
        outs = []
        for ids in batch:
            e = torch.cumsum(self.table[ids], 0) / torch.arange(1, len(ids) + 1)[:, None]
            if self.rotate is not None:
                e = e @ self.rotate.T + 1.0
            if self.nan_on is not None and ids == self.tokenize(self.nan_on):
                e = e * float("nan")
            outs.append(e[:, : self.width] if self.width else e)
        return outs


def fake_pair():
    rot = random_orthogonal(16, torch.Generator().manual_seed(5)).float()
    return FakeEncoder(identity="fake4b"), FakeEncoder(identity="fake06b", rotate=rot)


def rotated_pairs(n=3000, d=24, noise=1e-3, seed=0):
    """x: anisotropic 4B-like cloud; y = R_true (x - m) + shift + noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    x = x + 5 * torch.randn(d, generator=g, dtype=torch.float64)
    r_true = random_orthogonal(d, g)
    shift = 3 * torch.randn(d, generator=g, dtype=torch.float64)
    y = (x - x.mean(0)) @ r_true.T + shift + noise * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, y, r_true, shift
