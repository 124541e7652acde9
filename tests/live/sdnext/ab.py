"""The real SD.Next (the ../shared/sdnext_e2e harness), driven through its HTTP API: stock against ours.
Run with the harness venv's python; the last line printed is `SUMMARY ...`, and OUT/result.json holds it all.

    python ab.py --harness DIR --root ROOT --extension EXT_DIR --out OUT [--lock /tmp/forge_run.lock]

Session "main" (the installed extension, its install.py run, the tiny Anima loaded):
    stock | ours (args [true]) | ours, another negative | ours, full default args | ours, output scale 0.5 |
    PNG Info of ours (SD.Next's parser + our paste functions) | img2img stock / ours | hires stock / ours |
    stock again (bit-identical to the first) | a wrong arg type (HTTP 500, our message) | stock again |
    issue 22's alignment files (tests/live/provenance_ab.py): a refit under the same name changes only the hash, a
    pasted infotext (SD.Next's /png-info parser, then our paste lookup) finds the file by its hash or says the image
    will differ, the X/Y/Z alignment-file axis (the XYZ Grid Script, by label) gives one cell per file equal to its
    single generation, a demo fit with an unmarked encoder copy stops, a foreign fit warns once
Session "future" (a copy of SD.Next whose `_encode_prompt` has another signature): stock works, ours fails
with a message naming the class, the method and the SD.Next version.
Every server log is searched for "Traceback" (none allowed outside the runs that must fail). With --lock,
the file is flock'ed for the whole run (both servers).
"""

import argparse
import base64
import io
import json
import os
import shutil
import sys
import time

TITLE = "qwen3.5-4b text encoder (anima)"
PROMPT = "1girl, solo, cat ears, looking at viewer, masterpiece"
NEGATIVE_A, NEGATIVE_B = "worst quality, low quality, blurry", "bad hands, extra fingers, watermark"
DEFAULT_ARGS = [True, "Automatic", False, 1.0, "Automatic", False, "Automatic", 1.0]


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harness", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--extension", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lock", default=None)
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    ap.add_argument("--skip-future", action="store_true")
    return ap.parse_args()


class Session:
    def __init__(self, rt, args, name, src=None):
        self.rt, self.name = rt, name
        self.out = os.path.join(args.out, name)
        os.makedirs(self.out, exist_ok=True)
        argv = ["run_txt2img.py", "--root", args.root, "--out", self.out, "--extensions", args.extension, "--copy-extensions",
                "--run-installers"] + (["--src", src] if src else [])
        saved, sys.argv = sys.argv, argv
        try:
            self.a = rt.parse()
        finally:
            sys.argv = saved
        self.a.root = os.path.abspath(self.a.root)
        src, python = rt.check_setup(self.a)
        data_dir = os.path.join(self.out, "data")
        os.makedirs(data_dir, exist_ok=True)
        with open(os.path.join(data_dir, "config.json"), "w", encoding="utf8") as f:
            json.dump(rt.SERVER_CONFIG, f, indent=2)
        rt.install_extensions(self.a, data_dir)
        rt.run_installers(self.a, src, python, data_dir, self.out)
        self.srv = rt.Server(self.a, src, python, data_dir, self.out)
        self.base = self.srv.base
        self.started = time.time()
        self.runs = {}

    def __enter__(self):
        try:
            return self._start()
        except BaseException:
            self.srv.stop(30)   # never leave a server behind
            raise

    def _start(self):
        self.startup = self.srv.wait_ready(self.a.start_timeout)
        models = self.rt.http("GET", self.base + "/sdapi/v1/sd-models", timeout=60)
        title = next(m["title"] for m in models if m["title"].endswith("/" + self.rt.MODEL_DIR))
        self.rt.http("POST", self.base + "/sdapi/v1/options", {"sd_model_checkpoint": title}, timeout=600)
        assert "Load model: family=anima" in self.log(), "the model did not load as Anima"
        scripts = self.rt.http("GET", self.base + "/sdapi/v1/scripts", timeout=60)
        assert TITLE in [s.lower() for s in scripts.get("txt2img", []) if s], f"our script is not loaded: {scripts}"
        assert TITLE in [s.lower() for s in scripts.get("img2img", []) if s]
        return self

    def __exit__(self, *exc):
        self.exit_code = self.srv.stop(30)
        return False

    def log(self):
        with open(self.srv.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, tag, endpoint="txt2img", ours=None, expect_error=False, **fields):
        body = {"prompt": PROMPT, "negative_prompt": NEGATIVE_A, "steps": 2, "cfg_scale": 4.0, "width": 64, "height": 64,
                "seed": 1234, "sampler_name": "Default", "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False}
        body.update(fields)
        if ours is not None:
            body["alwayson_scripts"] = {TITLE: {"args": ours}}
        t0 = time.time()
        try:
            resp = self.rt.http("POST", f"{self.base}/sdapi/v1/{endpoint}", body, timeout=900)
        except RuntimeError as error:
            assert expect_error, f"{tag}: {error}"
            self.runs[tag] = {"error": str(error), "seconds": round(time.time() - t0, 1)}
            return None
        assert not expect_error, f"{tag}: no error"
        assert resp.get("images"), f"{tag}: no image"
        info = json.loads(resp["info"]) if isinstance(resp.get("info"), str) and resp["info"] else resp.get("info") or {}
        png = os.path.join(self.out, f"{tag}.png")
        self.rt.decode_png(resp["images"][0], png)
        size, pixels = self.rt.image_stats(png)
        self.runs[tag] = {"infotext": (info.get("infotexts") or [""])[0], "size": list(size), "seconds": round(time.time() - t0, 1),
                          "png": png, "b64": resp["images"][0]}
        self.runs[tag]["pixels"] = pixels
        self.runs[tag]["all"] = list(zip(resp["images"], info.get("infotexts") or [""] * len(resp["images"])))
        return self.runs[tag]


def png_with_infotext(png_path, infotext):
    """A PNG as SD.Next saves it: the infotext in its "parameters" text chunk (API images carry none)."""
    from PIL import Image, PngImagePlugin

    saved, meta = io.BytesIO(), PngImagePlugin.PngInfo()
    meta.add_text("parameters", infotext)
    Image.open(png_path).save(saved, format="PNG", pnginfo=meta)
    return base64.b64encode(saved.getvalue()).decode()


class SDNextHost:
    """What tests/live/provenance_ab.py needs of SD.Next. Its API has no `infotext` field: a paste is SD.Next's own
    parser (/sdapi/v1/png-info) and then our paste lookup over the files the server searches."""

    def __init__(self, session, root):
        self.s = session
        self.models = os.path.join(root, "models", "qwen35")
        self.folder = os.path.join(self.models, "provenance_ab")
        self.encoder_path = os.path.join(self.models, "qwen35_4b.safetensors")

    def generate(self, tag, ours=None, expect_error=False):
        run = self.s.request(tag, ours=ours, expect_error=expect_error)
        return self.s.runs[tag] if expect_error else run

    def paste(self, tag, infotext):
        from lib_qwen35.host import file_locator, messages, paste_lookup
        from lib_qwen35.host.infotext import KEY_ALIGNMENT, KEY_ALIGNMENT_FILE, KEY_ALIGNMENT_HASH

        carrier = self.s.runs["prov_stock"]["png"]
        params = self.s.rt.http("POST", self.s.base + "/sdapi/v1/png-info", {"image": png_with_infotext(carrier, infotext)},
                                timeout=60).get("parameters") or {}
        pasted = paste_lookup.resolve("alignment", str(params.get(KEY_ALIGNMENT_FILE)),
                                      paste_lookup.normalise_hash(params.get(KEY_ALIGNMENT_HASH)),
                                      self.candidates(), lambda path: file_locator.file_content_hash(path, "alignment"))
        run = self.s.request(tag, ours=[True, "Automatic", True, float(params.get(KEY_ALIGNMENT, 1.0)), pasted.value])
        return run, messages.paste_note(pasted)

    def candidates(self):
        """The alignment files the server's pickers offer (models/qwen35/, recursively; names unique here)."""
        from lib_qwen35.files.checkpoint import read_file_header
        from lib_qwen35.host.file_locator import FoundFile
        from lib_qwen35.model.output_stage import kind_of

        found = []
        for folder, _, files in sorted(os.walk(self.models)):
            for name in sorted(files):
                path = os.path.join(folder, name)
                if name.endswith(".safetensors") and kind_of(read_file_header(path, "file").tensors) == "alignment":
                    found.append(FoundFile(name, path))
        return found

    def grid(self, tag, values):
        """The XYZ Grid Script (x_type given as the axis label), with the cells' images."""
        args = ["[Qwen3.5 TE] Alignment file", "", values, "Nothing", "", [], "Nothing", "", [], False, True, False,
                True, False, True, False, False, 0, False, "None", 2, True, 1, 0]
        run = self.s.request(tag, ours=[True], script_name="xyz grid script", script_args=args)
        return [{"infotext": text, "pixels": decode_pixels(image)} for image, text in run["all"][-len(values):]]

    def log_text(self):
        return self.s.log()


def decode_pixels(b64):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64.split(",", 1)[-1]))).convert("RGB"), dtype=np.int16)


def differ(a, b):
    return a["pixels"].shape != b["pixels"].shape or bool((a["pixels"] != b["pixels"]).any())


def main():
    args = parse()
    if args.lock:   # one heavy thing at a time on the machine: held for both sessions
        import fcntl

        lock = open(args.lock, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
    sys.path.insert(0, args.harness)
    sys.path.insert(0, args.repo)
    sys.path.insert(0, os.path.join(args.repo, "tests"))   # fits.py, live/provenance_ab.py
    import run_txt2img as rt

    from lib_qwen35.host import infotext as ours_infotext

    os.makedirs(args.out, exist_ok=True)
    checks, result = {}, {"sessions": {}}
    with Session(rt, args, "main") as s:
        stock = s.request("stock")
        stock_b = s.request("stock_neg_b", negative_prompt=NEGATIVE_B)
        # a fact about the host, recorded (not checked): its prompt cache ignores a changed negative prompt
        result["host_facts"] = {"stock_ignores_a_changed_negative": not differ(stock, stock_b)}
        on_a = s.request("ours_neg_a", ours=[True])
        on_b = s.request("ours_neg_b", ours=[True], negative_prompt=NEGATIVE_B)
        full = s.request("ours_full_args", ours=DEFAULT_ARGS)
        scaled = s.request("ours_scale_0.5", ours=DEFAULT_ARGS[:7] + [0.5])
        checks["stock_vs_ours_differ"] = differ(stock, on_a)
        checks["infotext_written"] = "Qwen35 TE: on" in on_a["infotext"] and "Qwen35 TE hash: " in on_a["infotext"] and "Qwen35" not in stock["infotext"]
        checks["negative_followed"] = differ(on_a, on_b)
        checks["short_args_are_defaults"] = not differ(on_a, full) and on_a["infotext"] == full["infotext"]
        checks["other_settings_not_stale"] = differ(on_a, scaled)

        from PIL import Image, PngImagePlugin

        # API images carry no metadata; a saved one has the infotext in its "parameters" text chunk
        saved, meta = io.BytesIO(), PngImagePlugin.PngInfo()
        meta.add_text("parameters", on_a["infotext"])
        Image.open(on_a["png"]).save(saved, format="PNG", pnginfo=meta)
        info = s.rt.http("POST", s.base + "/sdapi/v1/png-info", {"image": base64.b64encode(saved.getvalue()).decode()}, timeout=60)
        restored = ours_infotext.params_from_infotext(info.get("parameters") or {})
        result["png_info_parameters"] = {k: v for k, v in (info.get("parameters") or {}).items() if k.startswith("Qwen35")}
        result["png_info_restored"] = restored.as_args()
        checks["png_info_restores"] = (restored.as_args() == [True, "qwen35_4b.safetensors"] + DEFAULT_ARGS[2:]
                                       and info.get("info") == on_a["infotext"])

        init = io.BytesIO()
        Image.open(stock["png"]).save(init, format="PNG")
        init_b64 = base64.b64encode(init.getvalue()).decode()
        i2i_stock = s.request("img2img_stock", "img2img", init_images=[init_b64], denoising_strength=0.6)
        i2i_ours = s.request("img2img_ours", "img2img", ours=[True], init_images=[init_b64], denoising_strength=0.6)
        checks["img2img_differs"] = differ(i2i_stock, i2i_ours) and "Qwen35 TE: on" in i2i_ours["infotext"]
        # a latent upscaler fails in stock SD.Next for Anima (its img2img VAE-encodes the latents): resize the image
        hires = dict(enable_hr=True, hr_scale=2, hr_resize_mode=1, hr_upscaler="Resize Nearest", hr_denoising_strength=0.5, hr_force=True)
        hr_stock = s.request("hires_stock", **hires)
        hr_ours = s.request("hires_ours", ours=[True], **hires)
        checks["hires_ran"] = (hr_stock["size"] == [128, 128] == hr_ours["size"] and "target=AnimaImageToImagePipeline" in s.log()
                               and "hires" in hr_ours["infotext"] and "Qwen35 TE: on" in hr_ours["infotext"])
        checks["hires_differs"] = differ(hr_stock, hr_ours)
        again = s.request("stock_again")
        checks["stock_bit_identical_after_ours"] = not differ(stock, again) and stock["infotext"] == again["infotext"]
        log_ok = s.log()
        checks["no_traceback_in_log"] = "Traceback" not in log_ok and "Running script" not in log_ok
        s.request("wrong_type", ours=[True, "Automatic", True, "strong"], expect_error=True)
        checks["wrong_type_gets_our_message"] = ("invalid setting: alignment_strength: 'strong' is not a number" in s.runs["wrong_type"]["error"]
                                                 and "HTTP 500" in s.runs["wrong_type"]["error"])
        after_error = s.request("stock_after_error")
        checks["stock_after_error_bit_identical"] = not differ(stock, after_error)
        from live import provenance_ab

        provenance, result["provenance"] = provenance_ab.run(SDNextHost(s, args.root), log=lambda t: print(f"[sdnext] {t}", flush=True))
        checks.update(provenance)
        result["sessions"]["main"] = {"startup_s": round(s.startup, 1), "runs": s.runs}
        result["peak_rss_gib"] = round((rt.rss_peak_kib(s.srv.server_pid()) or 0) / 2**20, 2)

    if not args.skip_future:
        future = os.path.join(args.out, "src-future")
        shutil.copytree(os.path.join(args.root, "src"), future, symlinks=True)
        path = os.path.join(future, "pipelines", "anima", "pipeline.py")
        with open(path, encoding="utf-8") as f:
            source = f.read()
        old = "        max_sequence_length: int = 512,\n    ):\n        \"\"\"Encode prompt through Qwen3"
        assert old in source, "the harness tree changed"
        with open(path, "w", encoding="utf-8") as f:   # a future SD.Next: the seam takes another parameter
            f.write(source.replace(old, "        max_sequence_length: int = 512,\n        use_cache: bool = True,\n    ):\n        \"\"\"Encode prompt through Qwen3"))
        with Session(rt, args, "future", src=future) as s:
            f_stock = s.request("stock")
            s.request("ours", ours=[True], expect_error=True)
            error = s.runs["ours"]["error"]
            checks["unknown_seam_stops_with_class_method_version"] = all(part in error for part in (
                "loads Anima in a way this extension does not know", "AnimaTextToImagePipeline._encode_prompt(prompt, device, dtype, max_sequence_length, use_cache)",
                "this SD.Next (", "Supported: AnimaTextToImagePipeline._encode_prompt"))
            checks["unknown_seam_stock_still_works"] = not differ(f_stock, s.request("stock_again"))
            result["sessions"]["future"] = {"startup_s": round(s.startup, 1), "runs": s.runs}
        shutil.rmtree(future, ignore_errors=True)

    for session in result["sessions"].values():
        for run in session["runs"].values():
            run.pop("pixels", None)
            run.pop("b64", None)
            run.pop("all", None)
    result["checks"] = checks
    with open(os.path.join(args.out, "result.json"), "w", encoding="utf8") as f:
        json.dump(result, f, indent=2)
    failed = [k for k, v in checks.items() if not v]
    main_runs = result["sessions"]["main"]["runs"]
    print(f"SUMMARY rc={1 if failed else 0} checks={sum(checks.values())}/{len(checks)} failed={failed} host_facts={result['host_facts']} "
          f"startup={result['sessions']['main']['startup_s']}s peak_rss={result['peak_rss_gib']}GiB "
          f"txt2img={'+'.join(str(r['seconds']) for r in main_runs.values())}s out={args.out} "
          f"infotext={json.dumps(main_runs['ours_neg_a']['infotext'].replace(chr(10), ' | '))}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
