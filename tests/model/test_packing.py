"""The per-token work on a right-padded batch's real tokens only (model/packing.py): packed against the padded
forward it replaces (the readable reference), and the linears never see a padded row."""

import pytest
import torch

from lib_qwen35 import load_encoder
from lib_qwen35.model.packing import Rows
from lib_qwen35.ops import cpu_gemm

LENGTHS = [5, 17, 9, 30]


def batch(lengths=LENGTHS):
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.arange(1000 + 50 * i, 1000 + 50 * i + n)
    return ids


def test_pack_and_unpack():
    rows = Rows([2, 3, 1], 3)
    x = torch.arange(9.0).view(3, 3, 1)
    packed = rows.pack(x)
    assert packed.flatten().tolist() == [0, 1, 3, 4, 5, 6] and rows.count == 6
    back = rows.unpack(packed)
    assert back.flatten().tolist() == [0, 1, 0, 3, 4, 5, 6, 0, 0]        # zeros at the padded places
    full = Rows([3, 3], 3)
    y = torch.randn(2, 3, 4)
    assert full.index is None and full.pack(y).data_ptr() == y.data_ptr()      # no padding: a reshape, no copy
    assert full.unpack(full.pack(y)).data_ptr() == y.data_ptr()


@pytest.mark.parametrize("backend", ["torch", "onednn"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_packed_forward_is_the_padded_forward(anima_ckpt, backend, dtype, monkeypatch):
    if backend == "onednn" and cpu_gemm.onednn_problem() is not None:
        pytest.skip("no oneDNN here")
    monkeypatch.setattr(cpu_gemm, "_choice", {torch.float32: (backend, None), torch.bfloat16: ("torch", None)})
    bb = load_encoder(anima_ckpt, dtype=dtype).backbone
    ids = batch()
    with torch.inference_mode():
        padded = bb(ids, torch.float32)                       # every position through every linear
        packed = bb(ids, torch.float32, lengths=LENGTHS)
    for i, n in enumerate(LENGTHS):
        assert (packed[i, :n] - padded[i, :n]).abs().max().item() <= 1e-6 * padded[i, :n].abs().max().item()
        assert torch.equal(packed[i, :n], padded[i, :n])     # the same sums: measured bit for bit at these sizes
        assert not packed[i, n:].any()


def test_the_linears_see_only_real_tokens(anima_ckpt, monkeypatch):
    enc = load_encoder(anima_ckpt, dtype="fp32")
    rows = []
    real = cpu_gemm.gemm
    monkeypatch.setattr(cpu_gemm, "gemm", lambda x, w, b=None, which=None: rows.append(x.shape[0]) or
                        real(x, w, b, which))
    prompts = [batch()[i, :n].tolist() for i, n in enumerate(LENGTHS)]
    out = enc.encode_batch(prompts, use_cache=False)
    assert set(rows) == {sum(LENGTHS)}                         # 61 rows, never the padded 4 x 30 = 120
    assert [o.shape[0] for o in out] == LENGTHS
