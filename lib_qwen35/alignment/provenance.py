"""What an alignment or calibration file says about its fit, and whether it suits the encoder it is used with.

The fit writes its provenance into the metadata of both files it makes (the 4B and 0.6B encoder files with their
short hashes, the prompts, the corpus, the held-out cosines, the date, whether it was a synthetic demo, and since
this version each file's content hash and, in the calibration, the hash of its alignment). Files from elsewhere (the
earlier ComfyUI node's) carry none. `check` turns that into verdicts, one per file:

    level  ok    fitted on the encoder file in use (and a calibration after the alignment in use)
           note  something the user should know that changes nothing (a calibration without its alignment)
           warn  it runs, but nobody measured what it does here (another encoder file, no provenance, ...)
           stop  it cannot work: a synthetic demo fit used with a real encoder
"""

from __future__ import annotations

import dataclasses
import os

from ..model.output_stage import Alignment, Calibration

FIT_TOOL = "lib_qwen35.fit"      # the "tool" the fit writes; also how our own files are recognised
UNKNOWN = "unknown"               # what the fit records for an encoder without a hash
LEVELS = ("ok", "note", "warn", "stop")


def _number(meta: dict, key: str, kind=int):
    try:
        return kind(meta[key])
    except (KeyError, TypeError, ValueError):
        return None


def _hash(meta: dict, key: str) -> str | None:
    value = str(meta.get(key) or "").strip().lower()
    return value if value and value != UNKNOWN else None


@dataclasses.dataclass(frozen=True)
class Provenance:
    """The fit metadata of one file, read leniently: a missing or unreadable value is None, never an error."""

    kind: str                       # "alignment" | "calibration"
    tool: str | None                # FIT_TOOL for our fits
    encoder_4b_file: str | None
    encoder_4b_hash: str | None
    encoder_06b_file: str | None
    encoder_06b_hash: str | None
    prompt_count: int | None
    train_count: int | None
    heldout_count: int | None
    corpus_version: str | None
    corpus_id: str | None
    date: str | None
    made_by: str | None             # the WebUI tab that ran the fit; None: the command line
    synthetic: bool                 # a demo between random checkpoints
    heldout: dict                   # mean held-out cosines: {"before": .., "strength_1.0": ..} or {"calibrated": ..}
    content_hash: str | None        # the hash the fit recorded for this file's tensors
    alignment_hash: str | None      # a calibration: the content hash of the alignment it was fitted after

    @property
    def known(self) -> bool:
        return self.tool == FIT_TOOL

    @property
    def fit_key(self) -> tuple | None:
        """Equal for the two files of one fit (both carry these keys), None where any is missing."""
        key = (self.date, self.corpus_id, self.encoder_4b_hash, self.encoder_06b_hash, self.prompt_count)
        return key if self.known and all(v is not None for v in key) else None

    def fitted_on(self) -> str:
        """'qwen35_4b.safetensors (1a2b3c4d5e)', or '' when the file does not say."""
        if not self.encoder_4b_file and not self.encoder_4b_hash:
            return ""
        return f"{self.encoder_4b_file or '?'} ({self.encoder_4b_hash or UNKNOWN})"

    @classmethod
    def from_metadata(cls, kind: str, metadata: dict | None) -> Provenance:
        meta = {str(k): v for k, v in (metadata or {}).items()}
        cosines = {name[len("heldout_cosine_"):]: value for name in meta if name.startswith("heldout_cosine_")
                   if (value := _number(meta, name, float)) is not None}
        return cls(kind=kind, tool=meta.get("tool") or None, encoder_4b_file=meta.get("encoder_4b_file") or None,
                   encoder_4b_hash=_hash(meta, "encoder_4b_hash"),
                   encoder_06b_file=meta.get("encoder_06b_file") or None,
                   encoder_06b_hash=_hash(meta, "encoder_06b_hash"), prompt_count=_number(meta, "prompt_count"),
                   train_count=_number(meta, "train_count"), heldout_count=_number(meta, "heldout_count"),
                   corpus_version=meta.get("corpus_version") or None, corpus_id=meta.get("corpus_id") or None,
                   date=meta.get("date") or None, made_by=meta.get("made_by") or None,
                   synthetic=str(meta.get("synthetic", "")).strip().lower() == "yes", heldout=cosines,
                   content_hash=_hash(meta, "content_hash"), alignment_hash=_hash(meta, "alignment_hash"))


@dataclasses.dataclass(frozen=True)
class EncoderFacts:
    """The 4B weights file in use, as provenance compares it."""

    name: str            # base name of the weights file
    hash: str            # files.checkpoint.encoder_hash
    synthetic: bool      # files.checkpoint.is_synthetic_checkpoint

    def describe(self) -> str:
        return f"{self.name} ({self.hash})"


@dataclasses.dataclass(frozen=True)
class FileFacts:
    """A loaded alignment or calibration file, as provenance and infotexts name it."""

    kind: str            # "alignment" | "calibration"
    name: str            # base name (what the infotext records)
    hash: str            # the content hash of the loaded tensors
    provenance: Provenance
    path: str | None = None

    @classmethod
    def of(cls, loaded: Alignment | Calibration) -> FileFacts:
        kind = "alignment" if isinstance(loaded, Alignment) else "calibration"
        path = loaded.path
        return cls(kind, os.path.basename(path) if path else kind, loaded.content_hash,
                   Provenance.from_metadata(kind, loaded.metadata), path)

    def describe(self) -> str:
        return f"{self.name} ({self.hash})"


@dataclasses.dataclass(frozen=True)
class Verdict:
    file: FileFacts
    level: str                       # one of LEVELS
    code: str                        # what was found (the table in docs/alignment-fitting.md)
    other: FileFacts | None = None   # the alignment, for the calibration-pairing codes


def check_file(file: FileFacts, encoder: EncoderFacts) -> Verdict:
    """One file against the encoder it is used with."""
    p = file.provenance
    if p.synthetic and not encoder.synthetic:
        return Verdict(file, "stop", "synthetic_with_real")
    if not p.known:
        return Verdict(file, "warn", "no_provenance")
    if p.content_hash and p.content_hash != file.hash:
        return Verdict(file, "warn", "changed_after_fit")
    if not p.encoder_4b_hash:
        return Verdict(file, "warn", "encoder_unknown")
    if p.encoder_4b_hash != encoder.hash:
        return Verdict(file, "warn", "other_encoder")
    return Verdict(file, "ok", "fitted_on_this")


def check_pair(calibration: FileFacts, alignment: FileFacts | None, strength: float = 1.0) -> Verdict | None:
    """A calibration against the alignment used before it (None: the metadata cannot tell)."""
    if alignment is None:
        return Verdict(calibration, "note", "calibration_without_alignment")
    c, a = calibration.provenance, alignment.provenance
    if c.alignment_hash:
        same = c.alignment_hash == alignment.hash
    elif c.fit_key and a.fit_key:
        same = c.fit_key == a.fit_key
    else:
        return None                  # a file without provenance already has its own warning
    if not same:
        return Verdict(calibration, "warn", "pair_other_alignment", alignment)
    if float(strength) != 1.0:
        return Verdict(calibration, "note", "calibration_strength", alignment)
    return Verdict(calibration, "ok", "pair_same_fit", alignment)


def check(encoder: EncoderFacts, alignment: FileFacts | None = None, calibration: FileFacts | None = None,
          strength: float = 1.0) -> list[Verdict]:
    """Every verdict for the files one generation uses, in the order a status shows them."""
    out = [check_file(f, encoder) for f in (alignment, calibration) if f is not None]
    if calibration is not None:
        pair = check_pair(calibration, alignment, strength)
        if pair is not None:
            out.append(pair)
    return out


def worst(verdicts) -> str:
    """The most serious level among `verdicts` ("ok" for none)."""
    return max((v.level for v in verdicts), key=LEVELS.index, default="ok")
