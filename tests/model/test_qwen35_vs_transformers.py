"""Our backbone must equal transformers' Qwen3_5TextModel (the arbiter of Qwen3.5's maths)."""

import pytest
import torch

from reference import reference_head, transformers_model

from lib_qwen35 import load_encoder
from lib_qwen35.synthetic import qwen35 as synthetic

pytest.importorskip("transformers")
T = 150   # crosses two 64-token chunk boundaries


def _ids(n, seed=1):
    return torch.randint(0, 248320, (1, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layout", ["anima", "official"])
def test_hidden_state_matches_transformers(tmp_path, layout):
    cfg = synthetic.make_config(layout)
    raw = synthetic.random_weights(cfg, seed=3)
    path = synthetic.write_checkpoint(tmp_path / "m.safetensors", layout=layout, weights=raw)
    enc = load_encoder(path, dtype="fp32", kernel="chunk")
    weights = synthetic.dequantised(raw, layout)          # what the file really holds, as fp32
    ref = transformers_model(cfg, weights)
    ids = _ids(T)
    with torch.no_grad():
        want = ref(input_ids=ids).last_hidden_state
        got = enc.backbone.hidden_states(ids, torch.float32)
    err = (got - want).abs().max().item()
    assert err <= 1e-4, f"max abs diff {err}"
    assert want.abs().max() > 0.1          # the comparison is not between two zero tensors


def test_head_output_matches_definition(tmp_path):
    cfg = synthetic.make_config("anima")
    raw = synthetic.random_weights(cfg, seed=4)
    path = synthetic.write_checkpoint(tmp_path / "m.safetensors", weights=raw)
    enc = load_encoder(path, dtype="fp32")
    weights = synthetic.dequantised(raw)
    ids = _ids(70, seed=2)
    with torch.no_grad():
        pre = transformers_model(cfg, weights)(input_ids=ids).last_hidden_state
    want = reference_head(weights, pre)[0]
    got = enc.encode_ids(ids[0].tolist())
    assert got.shape == (70, 1024)
    assert (got.double() - want).abs().max().item() <= 1e-4


def test_batched_right_padding_is_exact(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    prompts = [list(range(5, 5 + n)) for n in (3, 70, 129)]
    singles = [enc.backbone(torch.tensor([p]), torch.float32)[0] for p in prompts]
    batched = enc.encode_batch(prompts)
    for s, b in zip(singles, batched):
        assert b.shape == s.shape
        assert (s - b).abs().max().item() <= 1e-5
