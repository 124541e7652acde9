""""Compare with stock": what a setting does to one prompt, before generating: the cosine between the pooled 4B
embedding after the output stage and the pooled stock 0.6B embedding."""

from __future__ import annotations

import torch


def pooled(encoder, text: str) -> torch.Tensor:
    """Mean-pooled [D] float32 CPU embedding of one prompt."""
    return encoder.encode_batch([encoder.tokenize(text)])[0].float().mean(0).cpu()


def compare_with_stock(prompt: str, encoder_4b, encoder_06b, output_stage=None) -> float:
    """Cosine between the pooled 4B embedding of `prompt` after `output_stage` (an
    output_stage.OutputStage, or None for the raw head output) and the pooled stock 0.6B embedding.
    1.0 means the adapter sees the same average direction as with the stock encoder."""
    x = encoder_4b.encode_batch([encoder_4b.tokenize(prompt)])[0].float()
    if output_stage is not None:
        x = output_stage.apply(x)
    y = pooled(encoder_06b, prompt)
    return float(torch.nn.functional.cosine_similarity(x.mean(0).cpu().double(), y.double(), dim=0))
