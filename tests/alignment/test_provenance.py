"""What an alignment or calibration file's fit metadata says, and each verdict against the encoder in use:
fitted on it, on another file, without provenance, changed after its fit, a synthetic demo with a real encoder (the
one stop), and a calibration against the alignment it is used after."""

import pytest
import torch

from lib_qwen35.alignment.provenance import (
    FIT_TOOL,
    EncoderFacts,
    FileFacts,
    Provenance,
    check,
    check_file,
    check_pair,
    worst,
)
from lib_qwen35.model.output_stage import Alignment, Calibration

FIT = {"tool": FIT_TOOL, "encoder_4b_file": "qwen35_4b.safetensors", "encoder_4b_hash": "1a2b3c4d5e",
       "encoder_06b_file": "qwen_3_06b_base.safetensors", "encoder_06b_hash": "6b7c8d9e0f", "prompt_count": "41277",
       "train_count": "37149", "heldout_count": "4128", "corpus_version": "anima-align-corpus-v1",
       "corpus_id": "anima-align-corpus-v1:41277", "date": "2026-12-04T10:11:12Z", "synthetic": "no"}
REAL = EncoderFacts("qwen35_4b.safetensors", "1a2b3c4d5e", synthetic=False)


def _alignment(meta, path="/m/qwen35/fit/rotation_matrix.safetensors", seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    return Alignment(q.float(), torch.randn(4, generator=g), torch.randn(4, generator=g), meta, path)


def _calibration(meta, path="/m/qwen35/fit/calibration_params.safetensors"):
    return Calibration(torch.full((4,), 1.5), torch.full((4,), 0.25), meta, path)


def test_metadata_is_read_leniently():
    p = Provenance.from_metadata("alignment", {**FIT, "heldout_cosine_before": "0.81", "heldout_cosine_strength_1.0":
                                               "0.95", "prompt_count": "many", "encoder_06b_hash": "unknown"})
    assert p.known and p.prompt_count is None and p.train_count == 37149 and p.encoder_06b_hash is None
    assert p.heldout == {"before": 0.81, "strength_1.0": 0.95} and p.synthetic is False
    assert p.fitted_on() == "qwen35_4b.safetensors (1a2b3c4d5e)" and p.fit_key is None   # the 0.6B hash is unknown
    empty = Provenance.from_metadata("calibration", None)
    assert not empty.known and empty.fitted_on() == "" and empty.fit_key is None and empty.heldout == {}
    assert Provenance.from_metadata("alignment", {**FIT, "synthetic": "YES"}).synthetic


@pytest.mark.parametrize("meta, encoder, level, code", [
    (FIT, REAL, "ok", "fitted_on_this"),
    ({**FIT, "encoder_4b_hash": "9f9f9f9f9f"}, REAL, "warn", "other_encoder"),
    ({}, REAL, "warn", "no_provenance"),
    ({"written_by": "lib_qwen35"}, REAL, "warn", "no_provenance"),                 # Alignment.save without a fit
    ({**FIT, "encoder_4b_hash": "unknown"}, REAL, "warn", "encoder_unknown"),
    ({**FIT, "content_hash": "0000000000"}, REAL, "warn", "changed_after_fit"),
    ({**FIT, "synthetic": "yes"}, REAL, "stop", "synthetic_with_real"),
    ({**FIT, "synthetic": "yes", "encoder_4b_hash": "5555555555"}, EncoderFacts("syn.safetensors", "5555555555", True),
     "ok", "fitted_on_this"),                                                         # a demo fit with a demo encoder
    ({"synthetic": "yes"}, REAL, "stop", "synthetic_with_real"),                     # the stop needs no other key
])
def test_each_file_verdict(meta, encoder, level, code):
    verdict = check_file(FileFacts.of(_alignment(meta)), encoder)
    assert (verdict.level, verdict.code) == (level, code)


def test_a_recorded_content_hash_that_matches_is_fine():
    alignment = _alignment(FIT)
    alignment = _alignment({**FIT, "content_hash": alignment.content_hash})
    assert check_file(FileFacts.of(alignment), REAL).code == "fitted_on_this"


def test_calibration_pairing():
    alignment = FileFacts.of(_alignment(FIT))
    other = FileFacts.of(_alignment({**FIT, "date": "2026-12-05T00:00:00Z"}, seed=1))
    by_hash = FileFacts.of(_calibration({**FIT, "alignment_hash": alignment.hash}))
    assert check_pair(by_hash, alignment).code == "pair_same_fit"
    assert check_pair(by_hash, other).code == "pair_other_alignment" and check_pair(by_hash, other).other is other
    assert check_pair(by_hash, alignment, strength=0.5).code == "calibration_strength"
    by_key = FileFacts.of(_calibration(FIT))                         # a fit before hashes: same date and inputs
    assert check_pair(by_key, alignment).code == "pair_same_fit"
    assert check_pair(by_key, other).code == "pair_other_alignment"
    assert check_pair(by_key, None).code == "calibration_without_alignment"
    assert check_pair(FileFacts.of(_calibration({})), alignment) is None        # nothing to compare
    verdicts = check(REAL, alignment, by_hash)
    assert [v.code for v in verdicts] == ["fitted_on_this", "fitted_on_this", "pair_same_fit"]
    assert worst(verdicts) == "ok" and worst([]) == "ok"
    assert worst(check(REAL, other, by_hash)) == "warn"
    assert worst(check(REAL, FileFacts.of(_alignment({**FIT, "synthetic": "yes"})))) == "stop"


def test_file_facts_name_and_hash():
    facts = FileFacts.of(_alignment(FIT))
    assert facts.kind == "alignment" and facts.name == "rotation_matrix.safetensors"
    assert facts.hash == _alignment(FIT).content_hash and facts.describe() == f"rotation_matrix.safetensors ({facts.hash})"
    assert FileFacts.of(_calibration(FIT)).kind == "calibration"
