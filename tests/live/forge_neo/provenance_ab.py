"""Issue 22's checks (tests/live/provenance_ab.py) in the real Forge Neo, API only, on one engine tree. Run with the
harness venv's python (it has Pillow and numpy); the last line printed is `SUMMARY ...`, OUT/result.json holds it all.

    python provenance_ab.py --root ROOT --engine legacy|qwen06-anima|qwen06 --extension EXT_DIR --out OUT

Forge's specifics: the files go to <data-dir>/models/qwen35/ (Forge's models_path is <data-dir>/models), the 4B file is
ROOT/models/text_encoder/qwen35_4b.safetensors; a paste is the txt2img request's `infotext` field without our
alwayson_scripts entry (Forge runs our paste functions on it), and what it found is in the server's log; the grid is
the "x/y/z plot" script, its X type the index of `[Qwen3.5 TE] Alignment file` in GET /sdapi/v1/script-info.
"""

import argparse
import base64
import io
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]

from live import provenance_ab  # noqa: E402 - run as a script: tests/ goes on sys.path first
from live.forge_neo.server import ENGINE_TREES, ForgeServer, ForgeSetup, http  # noqa: E402

TITLE = "qwen3.5-4b text encoder (anima)"
XYZ = "x/y/z plot"
AXIS = "[Qwen3.5 TE] Alignment file"


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--engine", required=True, choices=[e for e, _ in ENGINE_TREES])
    ap.add_argument("--extension", required=True)
    ap.add_argument("--out", required=True)
    return ap.parse_args()


def pixels(b64):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64.split(",", 1)[-1]))).convert("RGB"), dtype=np.int16)


class ForgeHost:
    def __init__(self, server, root, out):
        self.server, self.out = server, out
        self.folder = os.path.join(server.data_dir, "models", "qwen35", "provenance_ab")
        self.encoder_path = os.path.join(root, "models", "text_encoder", "qwen35_4b.safetensors")
        self.runs = {}

    def body(self, **fields):
        body = {"prompt": "1girl, solo, cat ears", "negative_prompt": "lowres", "steps": 1, "cfg_scale": 4.0,
                "width": 64, "height": 64, "seed": 1234, "sampler_name": "Euler", "scheduler": "Simple",
                "distilled_cfg_scale": 3.0, "send_images": True, "save_images": False}
        body.update(fields)
        return body

    def post(self, tag, body, expect_error=False):
        t0 = time.time()
        try:
            response = http("POST", self.server.url + "/sdapi/v1/txt2img", body, timeout=900)
        except RuntimeError as error:
            self.runs[tag] = {"error": str(error)[:3000], "seconds": round(time.time() - t0, 1)}
            assert expect_error, f"{tag}: {error}"
            return self.runs[tag]
        assert not expect_error, f"{tag}: no error"
        info = json.loads(response["info"]) if isinstance(response.get("info"), str) else response.get("info") or {}
        runs = [{"infotext": text or "", "pixels": pixels(image)}
                for image, text in zip(response["images"], info.get("infotexts") or [""] * len(response["images"]))]
        self.runs[tag] = {"infotext": runs[0]["infotext"], "seconds": round(time.time() - t0, 1), "images": len(runs)}
        return runs

    def generate(self, tag, ours=None, expect_error=False):
        fields = {"alwayson_scripts": {TITLE: {"args": ours}}} if ours is not None else {}
        result = self.post(tag, self.body(**fields), expect_error)
        return result if expect_error else result[0]

    def paste(self, tag, infotext):
        """The request's `infotext` field, without our alwayson_scripts entry: Forge runs our paste functions."""
        before = len(self.log_text())
        # "styles" set: this Forge's API answers HTTP 500 for any infotext otherwise (its styles paste field returns
        # gr.skip(), a dict that apply_infotext then checks with isinstance(value, List[str]): a TypeError)
        run = self.post(tag, self.body(infotext=infotext, styles=[]))[0]
        said = [line for line in self.log_text()[before:].splitlines() if "[Qwen3.5 TE] Pasted:" in line]
        return run, "\n".join(said)

    def grid(self, tag, values):
        info = http("GET", self.server.url + "/sdapi/v1/script-info")
        xyz = next(s for s in info if s.get("name") == XYZ and not s.get("is_img2img"))
        x_type = next(a for a in xyz["args"] if a.get("label") == "X type")["choices"].index(AXIS)
        args = [x_type, "", values, 0, "", [], 0, "", [], True, True, False, False, False, False, False, 0, 0, False]
        runs = self.post(tag, self.body(script_name=XYZ, script_args=args,
                                        alwayson_scripts={TITLE: {"args": [True]}}))
        return runs[-len(values):]        # the grid first, then one image per cell (include_lone_images)

    def log_text(self):
        return self.server.log_text()


def main():
    args = parse()
    root = os.path.abspath(os.path.expanduser(args.root))
    tree = dict(ENGINE_TREES)[args.engine]
    setup = ForgeSetup(args.engine, os.path.join(root, tree, "webui"), os.path.join(root, "venv", "bin", "python"),
                       os.path.join(root, "models"))
    os.makedirs(args.out, exist_ok=True)
    server = ForgeServer(setup, args.out, extensions=[args.extension], web_ui=False)
    checks, facts, t0, startup = {}, {}, time.time(), 0.0
    try:
        startup = server.start()
        server.select_anima()
        host = ForgeHost(server, root, args.out)
        host.generate("warm_up")        # the first request builds the scripts' UI (script-info needs it)
        checks, facts = provenance_ab.run(host, log=lambda text: print(f"[{args.engine}] {text}", flush=True))
        facts["runs"] = host.runs
    finally:
        server.stop()
    failed = [k for k, v in checks.items() if not v]
    with open(os.path.join(args.out, "result.json"), "w", encoding="utf-8") as f:
        json.dump({"checks": checks, "facts": facts}, f, indent=2, default=str)
    seconds = "+".join(str(r.get("seconds")) for r in facts.get("runs", {}).values())
    print(f"SUMMARY rc={1 if failed or not checks else 0} engine={args.engine} checks={sum(checks.values())}/{len(checks)} "
          f"failed={failed} startup={startup:.1f}s wall={time.time() - t0:.0f}s requests={seconds}s "
          f"peak_rss={server.peak_rss}GiB out={args.out}", flush=True)
    return 1 if failed or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
