"""bench/bench_cpu_paired.py on a small checkpoint: ours and the bf16 floor alternate in one process, each round's
ratio comes from the two runs of that round, the model is left as loaded, and the report prints the medians. The
timings mean nothing here (tiny model); the full-size figures come from running the script."""

import importlib.util
import statistics
import subprocess
import sys

import torch

from repo import ROOT

SCRIPT = ROOT / "bench" / "bench_cpu_paired.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_cpu_paired_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rounds_pair_ours_with_the_floor_and_leave_the_model_as_loaded(ckpt_dir, monkeypatch):
    import lib_qwen35
    from lib_qwen35.model.linear import StoredLinear
    from lib_qwen35.synthetic import qwen35 as synthetic

    path = synthetic.write_checkpoint(ckpt_dir / "paired_small.safetensors", seed=0)
    loaded = []
    real_load = lib_qwen35.load_encoder

    def load(*a, **kw):
        enc = real_load(*a, **kw)
        loaded.append((enc, {m: m.gemm_dtype for m in enc.backbone.modules() if isinstance(m, StoredLinear)}))
        return enc

    monkeypatch.setattr(lib_qwen35, "load_encoder", load)        # paired() imports it when called
    before = StoredLinear.forward
    res = _module().paired(str(path), [5, 9], 3)
    assert StoredLinear.forward is before                       # the floor's timing wrapper is taken off again
    (enc, gemm_dtypes), = loaded
    assert gemm_dtypes and all(m._cached is None for m in gemm_dtypes)    # ours reads its stored weights again
    assert all(m.gemm_dtype == d for m, d in gemm_dtypes.items())           # and multiplies as loaded
    for T in (5, 9):
        r = res[T]
        assert len(r["ours"]) == len(r["floor"]) == len(r["ratio"]) == 3
        assert all(f > 0 for f in r["floor"])
        assert r["ratio"] == [a / b for a, b in zip(r["ours"], r["floor"])]
    ids = list(range(100, 109))
    with torch.inference_mode():
        again = enc.encode_batch([ids], use_cache=False)[0]
    assert torch.isfinite(again).all()
    assert statistics.median(res[9]["ratio"]) > 0


def test_the_report_prints_the_medians():
    r = subprocess.run([sys.executable, str(SCRIPT), "--layers", "2", "--tokens", "4", "--rounds", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "machine:" in r.stdout and "auto on this CPU:" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.split()[:1] == ["4"])
    cells = line.split()
    assert float(cells[1]) > 0 and float(cells[2]) > 0 and cells[3].endswith("x") and len(cells) == 6
