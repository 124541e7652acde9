"""bench/bench_fit.py --batches runs end to end on small checkpoints: the fit's own batches of the corpus, each
encoder in its own process (this tree, and a --baseline-lib tree), the floors, the projection and the report. The
timings mean nothing here; the full-size figures come from running the script (docs/performance.md)."""

import json
import subprocess
import sys

from repo import ROOT

SCRIPT = ROOT / "bench" / "bench_fit.py"


def test_batch_mode_times_batches_floors_and_projects(tmp_path):
    from lib_qwen35.synthetic import qwen35 as synthetic
    from lib_qwen35.synthetic.qwen3 import write_checkpoint as write_06b

    p4 = synthetic.write_checkpoint(tmp_path / "4b.safetensors", seed=0)
    p6 = write_06b(tmp_path / "06b.safetensors", seed=1, vocab_size=151936, hidden_size=64, intermediate_size=96,
                   num_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32)
    out = tmp_path / "fit.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--batches", "0", "8", "15", "--weights-4b", str(p4),
                        "--weights-06b", str(p6), "--baseline-lib", str(ROOT), "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["trees"]) == {"ours/4b", "ours/06b", "baseline/4b", "baseline/06b"}
    assert res["floors"]["4b/0"]["real"] == 255 and res["floors"]["4b/15"]["padded"] == 32 * 64   # the fit's batches
    for key, p in res["projections"].items():
        assert p["prompts"] == {"corpus": 41277, "first look": 2000} and p["corpus"] > p["first look"] > 0, key
    for text in ("capabilities:", "ratio to best", "projection: t = a + b * real tokens", "ours: whole fit, corpus",
                 "baseline: whole fit, first look"):
        assert text in r.stdout, text
