"""Load benchmark: time to load a CPU encoder and the process's peak RSS, per library tree, in one run.

    python bench/bench_load.py                              # this tree; full width (2560), 8 layers
    python bench/bench_load.py --lib /tmp/main_snapshot .   # another tree (e.g. `git archive main`) vs this one

Each load runs in its own subprocess, so its peak RSS (VmHWM) is its own. The checkpoint is one random FP8
file in the real Anima layout (lib_qwen35.synthetic.qwen35) at full width and reduced depth, written once; the
page cache is warm for every load (the file was just written and is read again each time). Two
configurations: the default (the weights alone: no upcast copies) and upcast_cache_bytes=2 GiB (the option's cost).
Prints medians of --repeats loads and the ratios against the first tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(HERE)        # after PYTHONPATH: a child imports lib_qwen35 from the tree it is given
from bench.bench_cpu import peak_rss_gib  # noqa: E402

CONFIGS = {"default": {}, "upcast_cache_2gib": {"upcast_cache_bytes": 2 << 30}}


def run_one(path: str, config: str) -> dict:
    """In the child: load, encode one prompt, report."""
    from lib_qwen35 import load_encoder

    enc = load_encoder(path, dtype="fp32", **CONFIGS[config])
    out = enc.encode("1girl, solo, looking at viewer")
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "RssAnon:", "RssFile:")):
                key, value = line.split(":")
                status[key] = int(value.split()[0]) / 2 ** 20
    return {"load_s": enc.load_seconds, "peak_rss_gib": peak_rss_gib(), "rss_gib": status.get("VmRSS"),
            "rss_anon_gib": status.get("RssAnon"), "rss_file_gib": status.get("RssFile"),
            "finite": bool(out.isfinite().all()), "lib": os.path.dirname(os.path.dirname(
                sys.modules["lib_qwen35"].__file__))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libs", nargs="*", default=[HERE], help="library trees to compare (default: this one)")
    ap.add_argument("--lib", action="append", default=[], help="a tree to run first (repeatable)")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(*args.child)))
        return

    from lib_qwen35.synthetic import qwen35 as synthetic

    libs = [os.path.abspath(p) for p in args.lib + args.libs]
    tmp = tempfile.mkdtemp(prefix="bench_load_")
    path = synthetic.write_checkpoint(os.path.join(tmp, "bench.safetensors"), seed=0,
                                      **dict(synthetic.FULL, num_layers=args.layers))
    size = os.path.getsize(path) / 2 ** 30
    print(f"weights: random FP8 checkpoint, hidden 2560, {args.layers} layers ({size:.2f} GiB); "
          f"medians of {args.repeats} loads, each in a fresh process, warm page cache")
    results = {}
    try:
        for config in CONFIGS:
            for lib in libs:
                runs = []
                for _ in range(args.repeats):
                    env = dict(os.environ, PYTHONPATH=lib)
                    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", path, config],
                                       capture_output=True, text=True, env=env, cwd=lib)
                    if r.returncode != 0:
                        raise SystemExit(f"{lib} {config}: failed ({r.returncode})\n{r.stderr[-2000:]}")
                    runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
                results[(config, lib)] = {k: statistics.median(x[k] for x in runs)
                                          for k in ("load_s", "peak_rss_gib", "rss_gib", "rss_anon_gib",
                                                    "rss_file_gib")}
    finally:
        os.remove(path)
    print(f"{'config':<17}{'tree':<40}{'load s':>8}{'peak RSS GiB':>14}{'RSS anon':>10}{'RSS file':>10}")
    for (config, lib), r in results.items():
        print(f"{config:<17}{lib[-39:]:<40}{r['load_s']:>8.2f}{r['peak_rss_gib']:>14.2f}"
              f"{r['rss_anon_gib']:>10.2f}{r['rss_file_gib']:>10.2f}")
    for config in CONFIGS:
        first = results[(config, libs[0])]
        for lib in libs[1:]:
            r = results[(config, lib)]
            print(f"ratio {config}: {lib[-30:]} / {libs[0][-30:]}  load {r['load_s'] / first['load_s']:.2f}x  "
                  f"peak RSS {r['peak_rss_gib'] / first['peak_rss_gib']:.2f}x")


if __name__ == "__main__":
    main()
