"""bench/bench_gpu.py survives what a GPU run can throw at it: one failing step skips its rows (with the reason)
instead of ending the run, and a run killed mid-write keeps its last good report. Runs the script's own code on
CPU with the tiny smoke config, one timed run per row."""

import argparse
import importlib.util

import pytest

from repo import ROOT


@pytest.fixture()
def bench_gpu(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_gpu_under_test", ROOT / "bench" / "bench_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "SMOKE_WORKLOADS", [("1x7", 1, 7), ("1x12", 1, 12)])
    return mod


def _args(tmp_path, **kw):
    base = dict(out=str(tmp_path / "RESULTS.md"), json=str(tmp_path / "results.json"), smoke=True, device="cpu",
                runs=1, warmup=0, budget_s=300.0, skip_transformers=False, ours_share=0.6, tmpdir=str(tmp_path),
                keep=False)
    return argparse.Namespace(**{**base, **kw})


def test_a_failing_encode_or_kernel_switch_skips_rows_not_the_run(bench_gpu, tmp_path, monkeypatch):
    from lib_qwen35.model.encoder import Encoder

    def broken_encode_ids(self, ids):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    class BrokenSwitch:
        def __init__(self, model):
            raise AttributeError("module has no attribute 'torch_chunk_gated_delta_rule'")

    monkeypatch.setattr(Encoder, "encode_ids", broken_encode_ids)
    monkeypatch.setattr(bench_gpu, "TransformersKernels", BrokenSwitch)
    bench = bench_gpu.Bench(_args(tmp_path))
    assert bench.run() == 0
    skipped = "\n".join(bench.skipped)
    assert "warm re-encode" in skipped and "illegal memory access" in skipped
    assert "transformers rows: cannot switch" in skipped
    assert any(r["variant"].startswith("eager") for r in bench.rows)        # the other rows still ran
    report = (tmp_path / "RESULTS.md").read_text()
    assert "illegal memory access" in report and "cannot switch" in report


def test_a_report_is_replaced_whole_or_not_at_all(bench_gpu, tmp_path, monkeypatch):
    bench = bench_gpu.Bench(_args(tmp_path))
    out = tmp_path / "RESULTS.md"
    bench.write()
    good = out.read_text()
    assert "SMOKE TEST" in good

    def killed(*a, **kw):
        raise KeyboardInterrupt       # the run is stopped while the new report is being produced
    monkeypatch.setattr(bench, "markdown", killed)
    with pytest.raises(KeyboardInterrupt):
        bench.write()
    assert out.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md", "results.json"]   # no temp file left


def test_fla_warm_up_covers_every_shape_and_head_layout_the_rows_use(bench_gpu, tmp_path, monkeypatch):
    """fla autotunes (~60 configs per kernel and head layout) and compiles per shape: the warm-up must reach every
    (batch, length) a timed row runs, graph buckets included, for ours and for transformers' repeated heads."""
    from lib_qwen35.ops import delta_rule

    calls = []

    def fake_fla(q, k, v, g, beta):
        calls.append((q.shape[0], q.shape[1], q.shape[2], v.shape[2], q.dtype, g.dtype, beta.dtype))
        return v
    monkeypatch.setattr(delta_rule, "fla_chunk_gated_delta_rule", fake_fla)
    monkeypatch.setattr(bench_gpu, "transformers_repeats_key_heads", lambda: True)
    monkeypatch.setattr(bench_gpu, "SMOKE_WORKLOADS", [("1x77", 1, 77), ("3x300", 3, 300)])
    bench = bench_gpu.Bench(_args(tmp_path))
    bench.warm_fla()
    cfg = bench.cfg
    hk, hv = cfg.linear_num_key_heads, cfg.linear_num_value_heads
    shapes = {(1, 77), (1, 128), (3, 300), (4, 320)}               # each workload and its graph bucket
    assert {c[:4] for c in calls} == {(B, T, h, hv) for B, T in shapes for h in (hk, hv)}
    assert {c[4:] for c in calls} == {(bench.dtype, bench_gpu.torch.float32, bench.dtype)}   # q/k/v, g fp32, beta
    assert [k for k in bench.load if k.startswith("fla autotune")] == [
        "fla autotune + compile, ours", "fla autotune + compile, transformers (key heads repeated)"]


def test_results_state_the_exact_paths_bandwidth_bound(bench_gpu):
    """bench/RESULTS.md's expectation follows from the model's sizes: FP8 read (1 B) + bf16 copy written (2 B) and
    read back (2 B) per parameter per forward. And until a GPU report is pasted in, it says no GPU has run."""
    from lib_qwen35.synthetic import qwen35 as synthetic

    P = bench_gpu.nonembedding_params(synthetic.make_config("anima", **synthetic.FULL))
    text = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    assert f"~{5 * P / 1e9:.1f} GB of memory traffic, >= {5 * P / 4.3e12 * 1e3:.1f} ms" in text
    assert "1x77 <= 4 ms" in text and "out of reach on the exact path" in text
    if "## Full-size benchmark" not in text:
        assert "**No GPU run has happened yet.**" in text
