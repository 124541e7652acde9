"""The embedding metrics encode and stats print (docs/library.md, "Metrics")."""


import pytest
import torch


def test_diagnostics_definitions():
    from lib_qwen35.cli.metrics import prompt_metrics

    same = torch.ones(4, 8)
    m = prompt_metrics([same, 2 * same])
    assert m["token_diversity"] == pytest.approx(0.0, abs=1e-12)       # collapsed tokens
    assert m["cross_prompt_similarity"] == pytest.approx(1.0)
    assert m["token_l2"] == pytest.approx((8 ** 0.5 + 2 * 8 ** 0.5) / 2)
    assert m["global_mean"] == pytest.approx(1.5) and m["global_std"] == pytest.approx(0.5)
    orth = torch.eye(3)
    assert prompt_metrics([orth])["token_diversity"] == pytest.approx(1.0)
