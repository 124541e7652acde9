"""norm.1 of the projection head: exp(w) and 1 + w agree near w = -0.003; plain w collapses tokens."""

import torch

from lib_qwen35.cli.metrics import prompt_metrics
from lib_qwen35.model.qwen35 import HeadRMSNorm


def test_exp_and_one_plus_agree_plain_does_not():
    w = -0.003 + 0.001 * torch.randn(1024, generator=torch.Generator().manual_seed(0))
    x = torch.randn(20, 1024)
    out = {p: HeadRMSNorm(w, 1e-6, p)(x) for p in HeadRMSNorm.PARAMETERISATIONS}
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()   # noqa: E731
    assert rel(out["exp"], out["one_plus"]) < 1e-4
    assert rel(out["exp"], out["one_plus"]) > 0                 # they are different formulas
    assert rel(out["plain"], out["exp"]) > 0.99                 # scale -0.003 instead of ~1


def test_plain_weight_collapses_tokens_in_a_model(anima_ckpt):
    from lib_qwen35 import load_encoder

    ids = list(range(1000, 1040))
    outs = {p: load_encoder(anima_ckpt, head_norm=p).encode_ids(ids) for p in ("exp", "plain")}
    good, bad = prompt_metrics([outs["exp"]]), prompt_metrics([outs["plain"]])
    # with scale ~-0.003 the SiLU sees ~0 and every token becomes ~ the bias of norm.3
    assert bad["token_diversity"] < 0.2 * good["token_diversity"]


def test_unknown_parameterisation_rejected():
    import pytest

    with pytest.raises(ValueError):
        HeadRMSNorm(torch.zeros(4), 1e-6, "log")
