"""The enabled request's time in the real Forge Neo on the CPU, full size, for one or more extension trees side by side.

    flock /tmp/forge_run.lock python bench/bench_forge_host.py --tree after=. --tree before=../main-before

Needs the forge_neo_e2e harness (../shared/forge_neo_e2e, `bash setup.sh`: its venv, Forge trees and random full-size
Anima, Qwen3-0.6B and Wan VAE) and the full-size random 4B file that bench/bench_cpu.py writes
(~/.cache/qwen35_bench/qwen35_4b_random.safetensors, --weights to change). The file is linked into a models folder of
its own as text_encoder/qwen35_4b.safetensors, beside links to the harness's models, so the harness's own folder (where
the real-host A/B keeps a small synthetic file under that name) is left alone.

Per tree, one API-only server (`--cpu`, so the encoder runs on the CPU with the extension's defaults: dtype "auto")
with that tree installed as the extension, and these requests in order (64x64, 1 step, CFG 4 with a negative
prompt, so each request encodes two prompts; the same seed):

    stock, first (loads Anima) | stock | enabled, first (loads the 4B) | enabled, a new short prompt |
    enabled, a new ~300-token prompt | enabled, that prompt again (cached) | stock, that prompt

Seconds per request, the server's RSS after it and its peak so far (VmHWM), then the ratios between trees, and our
part of the last enabled request's infotext. Random weights: the images mean nothing; timings and memory are the
real model's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "tests"))        # the real-host helpers the live tests use

from live.forge_neo.server import ForgeServer, http, setups  # noqa: E402 - after the path above

TITLE = "qwen3.5-4b text encoder (anima)"
EXTENSION = "sd-forge-qwen35-anima"
DEFAULT_WEIGHTS = os.path.join(os.path.expanduser("~"), ".cache", "qwen35_bench", "qwen35_4b_random.safetensors")
SHORT = "1girl, from side, looking at viewer, masterpiece"
LONG = ", ".join(["1girl, solo, long hair, looking at viewer, smile, blue eyes, school uniform, cherry blossoms, "
                  "outdoors, day, wind, masterpiece, best quality"] * 7)       # about 300 Qwen3.5 tokens
NEGATIVE = "worst quality, low quality"
STEPS = (("stock, first (loads Anima)", SHORT, False), ("stock", SHORT, False),
         ("enabled, first (loads the 4B)", SHORT, True), ("enabled, a new short prompt", SHORT + ", smile", True),
         ("enabled, a new ~300-token prompt", LONG, True), ("enabled, the same prompt again (cached)", LONG, True),
         ("stock, the ~300-token prompt", LONG, False))


def models_folder(weights: str, harness_models: str) -> str:
    """A models folder: links to the harness's Stable-diffusion/ and VAE/ files, and text_encoder/ with its
    Qwen3-0.6B and our full-size file as qwen35_4b.safetensors."""
    root = tempfile.mkdtemp(prefix="forge_host_models_")
    for folder in ("Stable-diffusion", "text_encoder", "VAE"):
        os.makedirs(os.path.join(root, folder))
        for name in os.listdir(os.path.join(harness_models, folder)):
            if name != "qwen35_4b.safetensors":
                os.symlink(os.path.join(harness_models, folder, name), os.path.join(root, folder, name))
    os.symlink(os.path.abspath(weights), os.path.join(root, "text_encoder", "qwen35_4b.safetensors"))
    return root


def rss_gib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) / 2 ** 20 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def run_tree(label: str, tree: str, setup, models: str, out: str) -> dict:
    run_dir = os.path.join(out, label)
    os.makedirs(run_dir)
    link = os.path.join(run_dir, EXTENSION)        # the folder name a user's clone has
    os.symlink(os.path.abspath(tree), link)
    setup = type(setup)(setup.engine, setup.webui, setup.python, models)
    server = ForgeServer(setup, run_dir, extensions=[link], web_ui=False)
    rows = []
    try:
        startup = server.start()
        server.select_anima()
        for name, prompt, enabled in STEPS:
            body = {"prompt": prompt, "negative_prompt": NEGATIVE, "width": 64, "height": 64, "steps": 1,
                    "cfg_scale": 4, "seed": 1234, "sampler_name": "Euler", "scheduler": "Simple"}
            if enabled:
                body["alwayson_scripts"] = {TITLE: {"args": [True]}}
            t0 = time.perf_counter()
            response = http("POST", server.url + "/sdapi/v1/txt2img", body, timeout=1200)
            rows.append({"request": name, "seconds": time.perf_counter() - t0, "rss_gib": rss_gib(server.proc.pid),
                         "peak_gib": server.peak_rss_gib()})
            if enabled:
                infotext = json.loads(response.get("info") or "{}").get("infotexts", [""])[0]
                ours = [p.strip() for p in infotext.split(",") if p.strip().startswith("Qwen35")]
            print(f"  {label}: {name}: {rows[-1]['seconds']:.1f} s", flush=True)
    finally:
        server.stop()
    return {"startup_s": startup, "rows": rows, "infotext": ours, "log": server.log_path}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", required=True, metavar="LABEL=DIR", help="an extension tree to time")
    ap.add_argument("--engine", default="legacy", help="the harness's Forge tree: legacy | qwen06 | qwen06-anima")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS, help="the full-size 4B file (bench/bench_cpu.py writes it)")
    ap.add_argument("--out", default=os.path.join(HERE, ".bench_out", "forge_host"))
    args = ap.parse_args()
    os.environ.setdefault("FORGE_NEO_E2E_ROOT", os.path.expanduser("~/.cache/forge_neo_e2e"))
    found, why = setups()
    setup = next((s for s in found if s.engine == args.engine), None)
    if setup is None or not os.path.isfile(args.weights):
        print(f"cannot run: {why or 'no Forge tree for --engine ' + args.engine}"
              f"{'' if os.path.isfile(args.weights) else '; no weights file ' + args.weights}")
        return 2
    trees = [t.split("=", 1) for t in args.tree]
    out = os.path.join(args.out, time.strftime("%Y%m%d-%H%M%S"))
    models = models_folder(args.weights, setup.models)
    results = {label: run_tree(label, tree, setup, models, out) for label, tree in trees}
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    labels = [label for label, _ in trees]
    print(f"\nForge Neo ({args.engine}) on the CPU, {os.cpu_count()} CPUs; 64x64, 1 step, CFG 4 + negative prompt; "
          f"seconds per request, server RSS after it / peak (GiB)")
    print(f"{'request':<42}" + "".join(f"{label:>24}" for label in labels))
    for i, (name, _, _) in enumerate(STEPS):
        cells = ""
        for label in labels:
            rows = results[label]["rows"]
            r = rows[i] if i < len(rows) else None
            cell = f"{r['seconds']:>8.1f} s {r['rss_gib'] or 0:>5.2f}/{r['peak_gib'] or 0:<5.2f}   " if r else "-"
            cells += f"{cell:>24}"
        print(f"{name:<42}{cells}")
    for label in labels:
        r = results[label]
        print(f"{label}: startup {r['startup_s']:.1f} s; infotext: {', '.join(r['infotext'])}")
    if len(labels) > 1:
        base = labels[-1]
        for label in labels[:-1]:
            for i in (3, 4):
                a, b = results[label]["rows"], results[base]["rows"]
                if i < len(a) and i < len(b):
                    print(f"{STEPS[i][0]}: {base} / {label} = {b[i]['seconds'] / a[i]['seconds']:.2f}x")
    print(f"runs: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
