"""Issue 22 in a real WebUI, through its HTTP API: alignment files you can compare, share and reproduce. The steps
are the same for Forge Neo and SD.Next; each driver gives a `host` with what differs (how it generates, pastes an
infotext and runs an X/Y/Z grid). Fits are made in this process with tests/fits.py against the server's own 4B file
(a synthetic checkpoint, so they are demo fits that suit it), in `host.folder`, a folder the server searches.

    a  ours with rotation_shared.safetensors (fit A)              -> image A, infotext with A's hash
    b  fit B written under the same name, the same request        -> the infotexts differ only in the hash; images too
    c  A saved again as old/rotation_old.safetensors; paste A's infotext -> rotation_old picked by its hash: image A
    d  rotation_old deleted; paste again                          -> by name (fit B): image B, "the image will differ"
    e  X/Y/Z [Qwen3.5 TE] Alignment file over shared, other       -> one cell per file, each its single generation
    f  a demo fit with an unmarked copy of the encoder (a "real" one) -> HTTP 500, SYNTHETIC DEMO, the file, Fix:
    g  a fit for another encoder file, twice                      -> both run; the console warns once
    h  the stock image before and after is bit-identical; no traceback before f
"""

from __future__ import annotations

import os
import shutil

ARGS_OFF_FILE = "Automatic"


def ours(alignment_file, encoder_file="Automatic"):
    """Our API args: on, the encoder, alignment on at strength 1 with `alignment_file`."""
    return [True, encoder_file, True, 1.0, alignment_file]


def differ(a, b) -> bool:
    return a["pixels"].shape != b["pixels"].shape or bool((a["pixels"] != b["pixels"]).any())


def same(a, b) -> bool:
    return not differ(a, b)


def only_the_hash_differs(first: str, second: str, old: str, new: str) -> bool:
    """The two infotexts are the same but for "Qwen35 TE alignment hash: old" -> "...: new"."""
    key = "Qwen35 TE alignment hash: "
    return old != new and key + old in first and first.replace(key + old, key + new) == second


def names(infotext: str, name: str, digest: str) -> bool:
    return f"Qwen35 TE alignment file: {name}, Qwen35 TE alignment hash: {digest}" in infotext


def run(host, log=print) -> tuple[dict, dict]:
    """(checks {name: bool}, facts for result.json). `host`: folder, encoder_path, generate(tag, ours=None,
    expect_error=False) -> {"infotext", "pixels"} or {"error"}, paste(tag, infotext) -> (run, what the paste said),
    grid(tag, values) -> one run per cell, log_text()."""
    from fits import unmarked_copy, write_fitted_alignment

    checks, facts = {}, {}
    folder = host.folder
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    for sub in ("shared", "old", "other", "foreign"):
        os.makedirs(os.path.join(folder, sub))
    shared = os.path.join(folder, "shared", "rotation_shared.safetensors")
    old = os.path.join(folder, "old", "rotation_old.safetensors")

    start = len(host.log_text())      # the log before these steps (another check's failed request) is not theirs
    stock = host.generate("prov_stock")
    h_a = write_fitted_alignment(shared, host.encoder_path, seed=11)
    a = host.generate("prov_a", ours=ours("rotation_shared.safetensors"))
    h_b = write_fitted_alignment(shared, host.encoder_path, seed=12)          # a refit under the same name
    b = host.generate("prov_b", ours=ours("rotation_shared.safetensors"))
    facts.update(hash_a=h_a, hash_b=h_b, infotext_a=a["infotext"])
    checks["same_name_other_contents_differ_only_in_the_hash"] = (
        only_the_hash_differs(a["infotext"], b["infotext"], h_a, h_b) and differ(a, b))
    log(f"b: infotexts differ only in the hash ({h_a} -> {h_b})")

    assert write_fitted_alignment(old, host.encoder_path, seed=11) == h_a    # A, under another name
    c, picked = host.paste("prov_paste_by_hash", a["infotext"])
    facts["paste_by_hash"] = picked
    checks["paste_finds_the_file_by_hash"] = (same(c, a) and names(c["infotext"], "rotation_old.safetensors", h_a)
                                              and "picked by its hash" in picked)
    os.remove(old)
    d, picked = host.paste("prov_paste_no_match", a["infotext"])
    facts["paste_no_match"] = picked
    checks["paste_without_a_match_warns_and_uses_the_name"] = (
        same(d, b) and names(d["infotext"], "rotation_shared.safetensors", h_b) and "the image will differ" in picked)
    log("c, d: paste by hash, and without a match")

    h_o = write_fitted_alignment(os.path.join(folder, "other", "rotation_other.safetensors"), host.encoder_path, seed=13)
    other = host.generate("prov_other", ours=ours("rotation_other.safetensors"))
    cells = host.grid("prov_grid", ["rotation_shared.safetensors", "rotation_other.safetensors"])
    facts["grid_cells"] = len(cells)
    checks["xyz_alignment_file_cells_equal_their_single_generations"] = (
        len(cells) == 2 and same(cells[0], b) and same(cells[1], other) and differ(cells[0], cells[1])
        and names(cells[0]["infotext"], "rotation_shared.safetensors", h_b)
        and names(cells[1]["infotext"], "rotation_other.safetensors", h_o))
    log("e: the X/Y/Z alignment-file grid")

    before_errors = host.log_text()
    checks["no_traceback_before_the_expected_error"] = "Traceback" not in before_errors[start:]
    unmarked_copy(host.encoder_path, os.path.join(folder, "qwen35_real.safetensors"))
    error = host.generate("prov_synthetic_stop", ours=ours("rotation_shared.safetensors", "qwen35_real.safetensors"),
                          expect_error=True)
    facts["synthetic_stop"] = error["error"][:600]
    said = error["error"] + host.log_text()[len(before_errors):]     # the HTTP body may be cut; the log has it all
    checks["synthetic_demo_fit_with_a_real_encoder_stops"] = "HTTP 500" in error["error"] and all(part in said for part in (
        "is a SYNTHETIC DEMO fit", os.path.join("shared", "rotation_shared.safetensors"), "qwen35_real.safetensors", "Fix:"))
    again = host.generate("prov_stock_again")
    checks["stock_bit_identical_after_the_stop"] = same(stock, again) and stock["infotext"] == again["infotext"]
    log("f: the synthetic stop")

    write_fitted_alignment(os.path.join(folder, "foreign", "rotation_foreign.safetensors"), host.encoder_path, seed=14,
                           encoder_hash="0000000000", synthetic=False)
    runs = [host.generate(f"prov_foreign_{i}", ours=ours("rotation_foreign.safetensors")) for i in (1, 2)]
    warned = host.log_text()[start:].count("Warning: alignment rotation_foreign.safetensors")
    facts["foreign_warnings_in_log"] = warned
    checks["foreign_fit_warns_once_and_runs"] = warned == 1 and all("Qwen35 TE alignment hash" in r["infotext"] for r in runs)
    log("g: a foreign fit")
    shutil.rmtree(folder, ignore_errors=True)
    return checks, facts
