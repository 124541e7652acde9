#!/usr/bin/env python3
"""Fault injection in the real Forge Neo (the team's forge_neo_e2e harness, headless on CPU).

One server session, with this extension installed; every generation 64x64, 1 step, the same seed:
  1. "A"          encoder W = faults_qwen35_4b.safetensors (synthetic weights, seed 0)
  2. "B_ref"      encoder faults_ref_b.safetensors (other weights, seed 1): the reference for step 4
  3. faults:      W rewritten IN PLACE with B's bytes (same size, old mtime put
                  back: path, size and mtime all unchanged); dropped into models/qwen35/: a FIFO, a
                  .safetensors with a malformed header (deep nesting), one with a list for a shape, and
                  a sharded index whose weight_map is a list
  4. "rewritten"  encoder W: must equal B_ref pixel for pixel (not the cached A,
                  not a mix of A and B), and the request must not hang on the FIFO
  5. "truncated"  W cut to half its size (a re-download starting): the request
                  fails with the extension's message naming the file; the server keeps serving
  6. "restored"   the complete A written back (a finished download, a new inode): must equal A
  7. "stock"      the accordion off: a stock generation still works
The server must be alive at the end, and its log must report each bad file once.

Run with the harness venv's python, one Forge server at a time on a 24 GiB machine:

  flock /tmp/forge_run.lock ~/.cache/forge_neo_e2e/venv/bin/python tools/forge_fault_injection.py [--extension DIR]

The harness is ../shared/forge_neo_e2e beside this repository, or the folder FORGE_NEO_E2E_DIR names.

Exit code 0 when every check holds; the last line is a one-line SUMMARY.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.environ.get("FORGE_NEO_E2E_DIR", os.path.join(os.path.dirname(REPO), "shared", "forge_neo_e2e"))
if not os.path.isfile(os.path.join(HARNESS, "run_txt2img.py")):
    sys.exit(f"no Forge Neo harness at {HARNESS} (run_txt2img.py); set FORGE_NEO_E2E_DIR to its folder")
sys.path.insert(0, HARNESS)
sys.path.insert(0, REPO)

import run_txt2img as harness  # noqa: E402

TITLE = "qwen3.5-4b text encoder (anima)"
# Names of our own: the shared harness's text_encoder folder (also searched) may hold a qwen35_4b.safetensors.
WEIGHTS, REF_B = "faults_qwen35_4b.safetensors", "faults_ref_b.safetensors"
SCRIPT_ARGS = ["enabled", "encoder_file", "use_alignment", "alignment_strength", "alignment_file",
               "use_calibration", "calibration_file", "output_scale"]   # lib_qwen35/host/params.py ARG_NAMES


def alwayson(encoder_file: str) -> dict:
    values = dict(enabled=True, encoder_file=encoder_file, use_alignment=False, alignment_strength=1.0,
                  alignment_file="Automatic", use_calibration=False, calibration_file="Automatic", output_scale=1.0)
    return {TITLE: {"args": [values[k] for k in SCRIPT_ARGS]}}


def write_bad_files(folder: str) -> list[str]:
    import struct

    def raw(name, header: bytes):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header)
        return path

    fifo = os.path.join(folder, "dropped_fifo.safetensors")
    os.mkfifo(fifo)
    deep = raw("deep_nesting.safetensors", b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    shape = raw("list_shape.safetensors", json.dumps({"w": {"dtype": "F32", "shape": ["x"],
                                                            "data_offsets": [0, 4]}}).encode())
    os.makedirs(os.path.join(folder, "sharded"))
    index = os.path.join(folder, "sharded", "model.safetensors.index.json")
    with open(index, "w") as f:
        json.dump({"weight_map": ["not", "a", "map"]}, f)
    return [fifo, deep, shape, index]


def unexpected_errors(log: str) -> list[str]:
    """The final lines of tracebacks that pass through the extension and end in anything but one of its
    own errors (the API logs a traceback for every failed request, ours included: that one is expected)."""
    bad, lines = [], log.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("Traceback (most recent call last)"):
            continue
        j = i + 1
        while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
            j += 1
        block, last = lines[i:j], lines[j] if j < len(lines) else ""
        if (any("lib_qwen35" in ln or "qwen35_anima" in ln for ln in block)
                and not last.startswith("lib_qwen35.errors.")):
            bad.append(last)
    return bad


def rewrite_in_place(path: str, source: str) -> None:
    st = os.stat(path)
    data = open(source, "rb").read()
    assert len(data) == st.st_size, "the two synthetic files must have the same size"
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=harness.DEFAULT_ROOT)
    ap.add_argument("--engine", default="legacy", choices=("legacy", "qwen06", "qwen06-anima"))
    ap.add_argument("--extension", default=REPO, help="the extension tree to install (default: this one)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--request-timeout", type=float, default=600)
    a = ap.parse_args()
    ns = argparse.Namespace(root=os.path.abspath(a.root), engine=a.engine, webui=None, extra_args="",
                            extensions=[a.extension], copy_extensions=False)
    webui, python = harness.check_setup(ns)
    out = os.path.abspath(a.out or os.path.join(ns.root, "runs", "faults-" + time.strftime("%Y%m%d-%H%M%S")))
    data_dir = os.path.join(out, "data")
    qwen35 = os.path.join(data_dir, "models", "qwen35")
    os.makedirs(qwen35)
    harness.install_extensions(ns, data_dir)

    from lib_qwen35.synthetic import qwen35 as synthetic
    weights = os.path.join(qwen35, WEIGHTS)
    pristine_a = synthetic.write_checkpoint(os.path.join(out, "pristine_a.safetensors"), seed=0)
    shutil.copyfile(pristine_a, weights)
    b = synthetic.write_checkpoint(os.path.join(qwen35, REF_B), seed=1)

    srv = harness.Server(ns, webui, python, data_dir, os.path.join(out, "server.log"))
    print(f"[faults] Forge PID {srv.pid}, log {srv.log_path}", flush=True)
    checks, images, results = {}, {}, []
    payload = {"prompt": "1girl, solo, cat ears", "negative_prompt": "lowres", "steps": 1, "cfg_scale": 4.0,
               "distilled_cfg_scale": 3.0, "width": 64, "height": 64, "seed": 1234, "sampler_name": "Euler",
               "scheduler": "simple", "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False}

    def generate(tag, aos):
        body = dict(payload, **({"alwayson_scripts": aos} if aos else {}))
        t0 = time.time()
        try:
            resp = harness.http("POST", srv.base + "/sdapi/v1/txt2img", body, timeout=a.request_timeout)
        except RuntimeError as error:          # HTTP 500: the request failed, with Forge's error JSON
            results.append({"tag": tag, "seconds": round(time.time() - t0, 1), "error": str(error)[:2000]})
            print(f"[faults] {tag}: failed in {time.time() - t0:.1f}s: {str(error)[:400]}", flush=True)
            return None
        png = os.path.join(out, f"{tag}.png")
        harness.decode_png(resp["images"][0], png)
        info = json.loads(resp["info"]) if isinstance(resp.get("info"), str) else (resp.get("info") or {})
        results.append({"tag": tag, "seconds": round(time.time() - t0, 1), "png": png,
                        "infotext": (info.get("infotexts") or [""])[0]})
        print(f"[faults] {tag}: {time.time() - t0:.1f}s", flush=True)
        images[tag] = harness.image_stats(png)[1]
        return images[tag]

    def same(x, y):
        return x is not None and y is not None and x.shape == y.shape and not (x != y).any()

    rc = 0
    try:
        print(f"[faults] API up after {srv.wait_ready(300):.1f}s", flush=True)
        harness.http("POST", srv.base + "/sdapi/v1/options",
                     {"sd_model_checkpoint": harness.CKPT, "forge_additional_modules": harness.MODULES}, timeout=120)
        scripts = harness.http("GET", srv.base + "/sdapi/v1/scripts", timeout=60).get("txt2img", [])
        checks["script_loaded"] = TITLE in [s.lower() for s in scripts]
        a_img = generate("A", alwayson(WEIGHTS))
        b_img = generate("B_ref", alwayson(REF_B))
        checks["A_and_B_differ"] = a_img is not None and b_img is not None and not same(a_img, b_img)

        rewrite_in_place(weights, b)
        bad = write_bad_files(qwen35)
        checks["rewritten_equals_B"] = same(generate("rewritten", alwayson(WEIGHTS)), b_img)

        os.truncate(weights, os.path.getsize(weights) // 2)
        generate("truncated", alwayson(WEIGHTS))
        failed = results[-1].get("error", "")
        log = open(srv.log_path, errors="replace").read()    # the full message (the HTTP body is cut at 2000)
        checks["truncated_fails_with_our_message"] = (
            "Qwen3.5-4B text encoder (Anima)" in failed and WEIGHTS in failed
            and f"{weights}: truncated" in log)
        alive = harness.http("GET", srv.base + "/sdapi/v1/sd-models", timeout=60)
        checks["serving_after_the_failure"] = bool(alive) and srv.proc.poll() is None

        tmp = weights + ".download"
        shutil.copyfile(pristine_a, tmp)
        os.replace(tmp, weights)                     # the download finishes: a complete file, new inode
        checks["restored_equals_A"] = same(generate("restored", alwayson(WEIGHTS)), a_img)
        checks["stock_still_works"] = generate("stock", None) is not None
        checks["server_alive"] = srv.proc.poll() is None
        log = open(srv.log_path, errors="replace").read()
        reported = {p: log.count(f"not offered in the file pickers: {p}") for p in bad}
        checks["bad_files_reported_once_each"] = all(n == 1 for n in reported.values())
        checks["only_our_errors_in_tracebacks"] = not unexpected_errors(log)
        rc = 0 if all(checks.values()) else 1
    except harness.Timeout as error:
        print(f"[faults] timeout: {error}\n{harness.tail(srv.log_path)}", file=sys.stderr)
        checks["no_timeout"] = False
        rc = 5
    except Exception as error:  # noqa: BLE001 - report, then stop the server
        print(f"[faults] error: {type(error).__name__}: {error}\n{harness.tail(srv.log_path)}", file=sys.stderr)
        rc = 4
    finally:
        peak = (harness.rss_peak_kib(srv.pid) or 0) / 2 ** 20
        srv.stop(30)
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump({"checks": checks, "runs": results, "peak_rss_gib": round(peak, 2), "rc": rc}, f, indent=2)
    for name, ok in checks.items():
        print(f"[faults] {'PASS' if ok else 'FAIL'} {name}")
    times = " ".join(f"{r['tag']}={r['seconds']}s{'(failed)' if 'error' in r else ''}" for r in results)
    print(f"SUMMARY rc={rc} checks={sum(checks.values())}/{len(checks)} {times} peak_rss={peak:.2f}GiB out={out}",
          flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
