"""The inspect command: what a weights file is, from its header."""


import torch

from lib_qwen35.cli.main import main


def test_inspect_describes_a_file_without_loading_it(capsys, tmp_path):
    from lib_qwen35.synthetic import qwen35 as synthetic

    path = synthetic.write_checkpoint(tmp_path / "q.safetensors", prefix="model.")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prefix 'model.'" in out and "6 Gated DeltaNet, 2 gated attention" in out and "F8_E4M3" in out
    from safetensors.torch import save_file
    save_file({"model.layers.0.self_attn.q_norm.weight": torch.ones(128)}, tmp_path / "other.safetensors")
    assert main(["inspect", str(tmp_path / "other.safetensors")]) == 2
    assert "not a Qwen3.5 text encoder" in capsys.readouterr().err


def test_inspect_names_the_real_file_and_the_stock_encoder(capsys, tmp_path):
    from header_files import full_size_qwen35_header, write_header_only

    from lib_qwen35.model.qwen3 import Qwen3Config
    from lib_qwen35.model.qwen3 import expected_shapes as qwen3_shapes
    from lib_qwen35.synthetic import qwen3 as synthetic_qwen3

    assert main(["inspect", str(full_size_qwen35_header(tmp_path / "qwen35_4b.safetensors"))]) == 0
    out = capsys.readouterr().out
    assert "426 tensors, 4,138,640,384 parameters" in out and "full size" in out and "can use it" in out
    from lib_qwen35.synthetic import qwen35 as synthetic
    official = synthetic.write_checkpoint(tmp_path / "official.safetensors", layout="official")
    assert main(["inspect", str(official)]) == 0
    out = capsys.readouterr().out
    assert "without Anima's projection head" in out and "get qwen35_4b.safetensors" in out
    # the stock Qwen3-0.6B: a small synthetic one, and one with the real sizes (header only)
    small = synthetic_qwen3.write_checkpoint(tmp_path / "qwen_small.safetensors")
    assert main(["inspect", str(small)]) == 0
    out = capsys.readouterr().out
    assert "Qwen3" in out and "not the Qwen3.5-4B" in out and "--weights-06b" in out
    stock = tmp_path / "qwen_3_06b_base.safetensors"
    write_header_only(stock, {"model." + k: ("BF16", s) for k, s in qwen3_shapes(Qwen3Config()).items()})
    assert main(["inspect", str(stock)]) == 0
    out = capsys.readouterr().out
    assert "the stock Anima text encoder, Qwen3-0.6B" in out and "not the Qwen3.5-4B" in out
