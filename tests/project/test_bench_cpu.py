"""bench/bench_cpu.py runs end to end on a small checkpoint: every variant's child process (ours, the fp32 and bf16
floors, transformers with shared layers) measures what the table shows, and the report prints each row and ratio,
the best floor and the CPU's capability line. The
timings themselves mean nothing here (tiny model); the full-size numbers come from running the script."""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys

import pytest

from repo import ROOT

SCRIPT = ROOT / "bench" / "bench_cpu.py"


def child(variant, path, mode="shared", env=None):
    r = subprocess.run([sys.executable, str(SCRIPT), "--child", variant, str(path), mode, "--tokens", "5", "9",
                        "--repeats", "2"], capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results(ckpt_dir):
    from lib_qwen35.synthetic import qwen35 as synthetic

    path = synthetic.write_checkpoint(ckpt_dir / "bench_small.safetensors", seed=0)
    return {"ours": child("ours", path), "ours_torch_gemm": child("ours", path, env={"QWEN35_CPU_GEMM": "torch"}),
            "floor": child("floor", path), "floor_bf16": child("floor_bf16", path),
            "ours_bf16": child("ours_bf16", path, env={"BENCH_CPU_OUTPUTS": str(ckpt_dir / "ours_bf16.pt")}),
            "ours_fp32": child("ours_fp32", path, env={"BENCH_CPU_OUTPUTS": str(ckpt_dir / "ours_fp32.pt")}),
            "transformers": child("transformers", path)}


def test_every_variant_measures_first_and_warm_encodes_and_its_memory(results):
    for variant, r in results.items():
        assert r["peak_rss_gib"] > 0.1 and r["threads"] >= 1, variant
        for t in ("5", "9"):
            x = r["times"][t]
            assert x["first"] > 0 and len(x["warm_all"]) == 2 and x["warm"] == statistics.median(x["warm_all"])
            assert x["user_s"] >= 0 and x["sys_s"] >= 0
    for name in ("floor", "floor_bf16"):
        floor = results[name]["times"]["9"]
        assert 0 < floor["inner_warm"] < floor["warm"]        # the linears are part of the forward
    assert "bf16 GEMM" in results["floor_bf16"]["gemm"] and results["ours_bf16"]["dtype"] == "bfloat16"
    assert results["transformers"]["mode"] == "shared"


def test_ours_is_compared_with_the_naive_path(results):
    fast, mkl = results["ours"]["vs_naive"], results["ours_torch_gemm"]["vs_naive"]
    assert fast["tokens"] == 5 and fast["max_rel"] < 1e-5 and fast["min_cos"] > 0.99999
    assert mkl["max_rel"] < 1e-5 and "QWEN35_CPU_GEMM=torch" in results["ours_torch_gemm"]["gemm"]


def test_the_report_prints_rows_ratios_and_the_shared_weights_note(results, capsys):
    spec = importlib.util.spec_from_file_location("bench_cpu_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = argparse.Namespace(tokens=[5, 9])
    mod.report(results, args, "shared", 15.4, 12.0)
    out = capsys.readouterr().out
    for text in ("ours (FP8 weights", "fp32 floor: matmuls only", "fp32-resident forward", "transformers",
                 "bf16 floor: matmuls only", "bf16-resident forward", "best floor (warm):",
                 "ratio ours / best floor (warm):", "ratio ours_bf16 / best floor (warm):",
                 "ratio ours / floor (warm):", "ratio transformers / ours (warm):", "vs the naive path",
                 "the whole model in fp32 needs 15.4 GiB, this machine had 12.0 GiB available"):
        assert text in out, text
    best = min((results[f]["times"]["9"]["inner_warm"], f) for f in ("floor", "floor_bf16"))
    assert f"9: {'fp32' if best[1] == 'floor' else 'bf16'} floor {best[0]:.2f} s" in out


def test_the_capability_line_and_the_auto_decision(capsys):
    spec = importlib.util.spec_from_file_location("bench_cpu_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lines = mod.capabilities()
    assert lines[0].startswith("capabilities: ") and "native bf16: " in lines[0]
    assert lines[1].startswith("auto on this CPU: ")


def test_the_bf16_variant_is_compared_with_the_exact_path_token_by_token(results, ckpt_dir):
    spec = importlib.util.spec_from_file_location("bench_cpu_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    got = mod.agreement(str(ckpt_dir / "ours_bf16.pt"), str(ckpt_dir / "ours_fp32.pt"))
    assert set(got) == {"5", "9"}
    for e in got.values():      # bf16 matmuls: close to the fp32 path, not equal to it
        assert 0.99 < e["min_cos"] < 1.0 and e["min_cos"] <= e["mean_cos"] and 0 < e["max_rel"] < 0.1
    same = mod.agreement(str(ckpt_dir / "ours_fp32.pt"), str(ckpt_dir / "ours_fp32.pt"))
    assert same is None         # a variant is not compared with itself
    assert mod.agreement(str(ckpt_dir / "missing.pt"), str(ckpt_dir / "ours_fp32.pt")) is None
