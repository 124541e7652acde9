"""bench/bench_gpu.py survives what a GPU run can throw at it: one failing step skips its rows (with the reason)
instead of ending the run, and a run killed mid-write keeps its last good report. Runs the script's own code on
CPU with the tiny smoke config, one timed run per row."""

import argparse
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench_gpu(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_gpu_under_test", ROOT / "bench" / "bench_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "SMOKE_WORKLOADS", [("1x7", 1, 7), ("1x12", 1, 12)])
    return mod


def _args(tmp_path, **kw):
    base = dict(out=str(tmp_path / "RESULTS.md"), json=str(tmp_path / "results.json"), smoke=True, device="cpu",
                runs=1, warmup=0, budget_s=300.0, skip_transformers=False, tmpdir=str(tmp_path), keep=False)
    return argparse.Namespace(**{**base, **kw})


def test_a_failing_encode_or_kernel_switch_skips_rows_not_the_run(bench_gpu, tmp_path, monkeypatch):
    from lib_qwen35.encoder import Encoder

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
