"""`inspect` of an alignment or calibration file: what it is, its content hash, what it was fitted on, and with
`--weights` / `--alignment` whether it belongs to that encoder file / that alignment.

Exit codes: 0 described (and confirmed for the files given); 1 described, but not confirmed for them (another
encoder file, no provenance, a synthetic demo with a real encoder, another fit's alignment); 2 not usable (the
output stage's own error: shapes, NaN, not orthogonal).
"""

from __future__ import annotations

import os
import textwrap

LABEL_WIDTH = 10          # as inspect's other lines: "verdict   ..."
LINE_WIDTH = 118
CONFIRMED = ("ok", "note")
NO_PROVENANCE = ("no fit metadata. It was not made by this extension's fit (the files published for the earlier "
                 "ComfyUI node are such files), so which encoder it was fitted on cannot be checked; the WebUI uses "
                 "it with a warning. Prefer a file you fitted yourself.")
REFIT = "Refit it for this file (the Qwen3.5 Alignment tab, or fit --weights-4b THIS_FILE ...)."


def say(label: str, text: str) -> None:
    """One labelled line, wrapped under its text column."""
    print(textwrap.fill(text, LINE_WIDTH, initial_indent=label.ljust(LABEL_WIDTH),
                        subsequent_indent=" " * LABEL_WIDTH, break_on_hyphens=False, break_long_words=False))


def main(args, kind: str) -> int:
    from ..alignment.provenance import FileFacts, check_file, check_pair
    from ..errors import InvalidArgumentError
    from ..model.output_stage import Alignment, Calibration

    if args.alignment and kind != "calibration":
        raise InvalidArgumentError(f"--alignment checks a calibration file against the alignment it is used after; "
                                   f"{args.file} is an alignment file. Drop --alignment.")
    loaded = (Alignment if kind == "alignment" else Calibration).load(args.file)   # shapes, NaN, orthogonality
    facts = FileFacts.of(loaded)
    encoder = _encoder_facts(args.weights) if args.weights else None      # refused (exit 2) before any output
    alignment = FileFacts.of(Alignment.load(args.alignment)) if args.alignment else None
    _describe(args.file, loaded, facts)
    verdicts = []
    if encoder is not None:
        verdict = check_file(facts, encoder)
        say("encoder", f"{args.weights} ({encoder.hash}): {_encoder_finding(verdict, encoder)}")
        verdicts.append(verdict)
    if alignment is not None:
        pair = check_pair(facts, alignment)
        say("alignment", f"{args.alignment} ({alignment.hash}): {_pair_finding(pair, facts)}")
        verdicts.append(pair)
    say("verdict", _verdict(facts, verdicts))
    return 0 if all(v is not None and v.level in CONFIRMED for v in verdicts) else 1


def _encoder_facts(path):
    """The --weights file as provenance compares it; anything but a Qwen3.5 encoder is refused (exit 2)."""
    from ..alignment.provenance import EncoderFacts
    from ..files.checkpoint import encoder_hash, is_synthetic_checkpoint, read_header
    from ..model.config import infer_layout

    infer_layout(read_header(path), path)        # "not a Qwen3.5 text encoder ..." for the 0.6B, an alignment, ...
    return EncoderFacts(os.path.basename(path), encoder_hash(path), is_synthetic_checkpoint(path))


def _describe(path, loaded, facts) -> None:
    p = facts.provenance
    say("file", path)
    tensors = {k: getattr(loaded, k) for k in loaded.KEYS}
    shapes = ", ".join(f"{k} {list(t.shape)}" for k, t in tensors.items())
    say("kind", f"{facts.kind}: {shapes}")
    say("check", f"every value finite{_orthogonality(loaded)}")
    key = "Qwen35 TE alignment hash" if facts.kind == "alignment" else "Qwen35 TE calibration hash"
    say("hash", f'{facts.hash} (images made with it record this as "{key}")')
    if not p.known:
        say("fitted", f"unknown: {NO_PROVENANCE}")
        return
    made_by = f" ({p.made_by})" if p.made_by else " (the command line)"
    say("fitted", f"{p.date or 'date unknown'} by {p.tool}{made_by}{_after(p, facts)}")
    say("on 4B", p.fitted_on() or "unknown: the file does not record its encoder file")
    if p.encoder_06b_file or p.encoder_06b_hash:
        say("to 0.6B", f"{p.encoder_06b_file or '?'} ({p.encoder_06b_hash or 'unknown'})")
    if p.prompt_count is not None:
        split = (f" ({p.train_count:,} fitted, {p.heldout_count:,} held out)"
                 if None not in (p.train_count, p.heldout_count) else "")
        say("prompts", f"{p.prompt_count:,}{split}, corpus {p.corpus_id or p.corpus_version or 'unknown'}")
    cosines = _cosines(p.heldout)
    if cosines:
        say("held-out", f"mean cosine {cosines}")
    if p.content_hash and p.content_hash != facts.hash:
        say("changed", f"its tensors hash to {facts.hash}, but the fit recorded {p.content_hash}: the file was changed "
                       f"after its fit, so what it says about its fit does not describe these numbers")
    say("synthetic", "yes: a SYNTHETIC DEMO fit (its 4B encoder was a synthetic checkpoint with random weights)"
        if p.synthetic else "no")


def _orthogonality(loaded) -> str:
    import torch

    if not hasattr(loaded, "rotation"):
        return ""
    r = loaded.rotation.double()
    err = (r @ r.T - torch.eye(r.shape[0], dtype=torch.float64)).abs().max().item()
    return f", rotation orthogonal (max |R R^T - I| {err:.1e})"


def _after(p, facts) -> str:
    if facts.kind != "calibration":
        return ""
    if p.alignment_hash:
        return f", after the alignment {p.alignment_hash} at strength 1.0"
    return ", after the alignment of the same fit (same date and inputs) at strength 1.0"


def _cosines(heldout: dict) -> str:
    names = {"before": "before alignment", "strength_1.0": "at strength 1.0",
             "calibrated": "after alignment and calibration"}
    return ", ".join(f"{heldout[k]:.4f} {text}" for k, text in names.items() if k in heldout)


def _encoder_finding(verdict, encoder) -> str:
    p = verdict.file.provenance
    if verdict.code == "synthetic_with_real":
        return "a real encoder (not synthetic)"
    if verdict.code == "other_encoder":
        return f"NOT the file it was fitted on ({p.encoder_4b_file or '?'}, {p.encoder_4b_hash})"
    if verdict.code in ("no_provenance", "encoder_unknown"):
        return "cannot be checked: the file does not record its encoder file"
    if verdict.code == "changed_after_fit":
        return "cannot be confirmed: the file was changed after its fit"
    return "the file it was fitted on" + (" (synthetic)" if encoder.synthetic else "")


def _pair_finding(pair, calibration) -> str:
    if pair is None:
        return "cannot be checked: the calibration does not record the alignment it was fitted after"
    if pair.code == "pair_other_alignment":
        wanted = calibration.provenance.alignment_hash
        return "NOT the alignment it was fitted after" + (f" (it was fitted after {wanted})" if wanted else
                                                            " (another fit's date or inputs)")
    return "the alignment it was fitted after"


def _verdict(facts, verdicts) -> str:
    """One sentence: the worst finding, or what the file is when nothing was checked against it."""
    kind, p = facts.kind, facts.provenance
    for v in verdicts:
        if v is None:
            return "the calibration's pairing cannot be checked: use it with the alignment file it came with"
        if v.level not in CONFIRMED:
            return _problem(v)
    if verdicts:
        found = {"fitted_on_this": "fitted on this encoder file", "pair_same_fit": "fitted after this alignment"}
        return "confirmed: " + " and ".join(found[v.code] for v in verdicts)
    if not p.known:
        return f"{_article(kind)} without provenance"
    if p.synthetic:
        return (f"a SYNTHETIC DEMO {kind}: it works only with the synthetic encoder it was fitted on; the WebUI "
                f"refuses it with a real encoder (the generation stops)")
    if not p.encoder_4b_hash:
        return f"{_article(kind)} that does not record the encoder file it was fitted on"
    return f"{_article(kind)} fitted on {p.fitted_on()}: use it with that encoder file (check yours with --weights)"


def _problem(v) -> str:
    if v.code == "synthetic_with_real":
        return ("the WebUI refuses this file with this encoder (the generation stops): it is a demo between random "
                "checkpoints. Fit your own for this encoder.")
    if v.code == "other_encoder":
        return ("fitted on another encoder file: the WebUI uses it with a warning, and its report does not describe "
                "this encoder. " + REFIT)
    if v.code == "no_provenance":
        return f"{_article(v.file.kind)} without provenance: it cannot be checked against this encoder"
    if v.code == "encoder_unknown":
        return f"{_article(v.file.kind)} that does not record its encoder file: it cannot be checked"
    if v.code == "changed_after_fit":
        return "changed after its fit: its fit metadata does not describe its numbers. " + REFIT
    return ("a calibration of another fit: a calibration belongs to the alignment of its own fit. Use the "
            "calibration file that came with this alignment.")


def _article(kind: str) -> str:
    return f"an {kind}" if kind == "alignment" else f"a {kind}"
