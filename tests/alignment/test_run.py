"""A whole fit: the report from pooled pairs, the pipeline with fast fake encoders (files, cancel and an exact
resume, the ETA, bad inputs, users' prompt files), and an end-to-end fit between synthetic 4B and 0.6B checkpoints
that writes files the output stage accepts."""

import json
import math
import os
import threading

import pytest
import torch

from fake_encoders import FakeEncoder, fake_pair, random_orthogonal, rotated_pairs

from lib_qwen35.alignment.compare import compare_with_stock
from lib_qwen35.alignment.corpus import Prompt, generate_corpus
from lib_qwen35.alignment.run import CALIBRATION_FILE, ROTATION_FILE, fit_from_embeddings, run_fit
from lib_qwen35.alignment.split import heldout_mask
from lib_qwen35.errors import FitCancelled, FitInputError, NonFiniteOutputError
from lib_qwen35.model.output_stage import Alignment, Calibration, OutputStage


def test_fit_from_embeddings_report_and_recovery():
    x, y, r_true, _ = rotated_pairs(n=2000, d=24, noise=1e-2)
    cats = [("spatial", "pose", "meta")[i % 3] for i in range(2000)]
    prompts = [Prompt(f"p{i}", c, "tags") for i, c in enumerate(cats)]
    held = heldout_mask(prompts)
    alignment, calibration, rep = fit_from_embeddings(x, y, cats, held)
    assert rep["counts"] == {"prompts": 2000, "train": 1800, "heldout": 200, "dim": 24}
    assert set(rep["heldout"]["categories"]) == {"spatial", "pose", "meta"}
    o = rep["heldout"]["overall"]
    assert o["strength_1.0"]["mean"] > 0.999 and o["strength_1.0"]["min"] > 0.99
    assert o["before"]["mean"] < 0.5
    assert (alignment["rotation"].double() - r_true).abs().max().item() < 1e-3
    assert calibration["scale"].shape == (24,) and calibration["bias"].shape == (24,)


# --- the pipeline with fast fake encoders -------------------------------------------------------------------
def test_run_fit_with_fakes_writes_loadable_files(tmp_path):
    e4, e6 = fake_pair()
    seen = []
    res = run_fit(e4, e6, str(tmp_path / "out"), limit=300, batch_size=16, chunk_size=64, progress=seen.append)
    a = Alignment.load(res.rotation_path)
    c = Calibration.load(res.calibration_path)
    assert a.rotation.shape == (16, 16) and c.scale.shape == (16,)
    assert a.metadata["prompt_count"] == "300" and a.metadata["corpus_version"] == "anima-align-corpus-v1"
    assert a.metadata["tool"] == "lib_qwen35.fit" and a.metadata["synthetic"] == "no"     # fakes have no weights file
    # each file records its own content hash; the calibration also the alignment's (the pair of one fit)
    assert a.metadata["content_hash"] == a.content_hash and c.metadata["content_hash"] == c.content_hash
    assert c.metadata["alignment_hash"] == a.content_hash and "alignment_hash" not in a.metadata
    assert res.report["meta"]["alignment_hash"] == a.content_hash and res.report["meta"]["calibration_hash"] == c.content_hash
    assert res.report["heldout"]["overall"]["strength_1.0"]["mean"] > 0.9999    # exact linear relation
    assert seen[-1].stage == "done" and seen[-1].fraction == 1.0
    assert any(p.eta_s is not None and p.stage == "embed 4B" for p in seen)
    md = open(res.report_md).read()
    assert f"alignment `{a.content_hash}`, calibration `{c.content_hash}`" in md
    assert "| **overall** | 30 |" in md and "strength 1.0 + calibration" in md
    assert json.load(open(res.report_json))["counts"]["heldout"] == 30


def test_cancel_and_resume_is_bit_identical(tmp_path):
    e4, e6 = fake_pair()
    clean = run_fit(e4, e6, str(tmp_path / "clean"), limit=300, batch_size=16, chunk_size=64)

    calls = {"n": 0}

    def cancel_after_some():
        calls["n"] += 1
        return calls["n"] > 7          # stops inside the second chunk of the 4B pass

    with pytest.raises(FitCancelled, match=r"'embed 4B' stage.*reused.*: 4B 64/300 prompts, 0.6B 0/300 prompts"):
        run_fit(e4, e6, str(tmp_path / "resumed"), limit=300, batch_size=16, chunk_size=64,
                cancel=cancel_after_some)
    chunks = os.listdir(tmp_path / "resumed" / "embedding_cache")
    assert len(chunks) == 1 and chunks[0].startswith("4b-")
    before = e4.calls
    resumed = run_fit(e4, e6, str(tmp_path / "resumed"), limit=300, batch_size=16, chunk_size=64)
    # only the unfinished 4B chunks were recomputed: 1 probe + chunks of 64, 64, 64, 44 in batches of 16
    assert e4.calls - before == 1 + 4 + 4 + 4 + 3
    for name in (ROTATION_FILE, CALIBRATION_FILE):
        from safetensors.torch import load_file
        a, b = load_file(os.path.join(clean.out_dir, name)), load_file(os.path.join(resumed.out_dir, name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert clean.report["heldout"] == resumed.report["heldout"]


class Clock:
    """A fake time.perf_counter for run_fit that the fake encoders advance: exact, machine-independent."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class TimedEncoder(FakeEncoder):
    def __init__(self, clock, seconds_per_prompt, **kw):
        super().__init__(**kw)
        self.clock, self.cost = clock, seconds_per_prompt

    def encode_batch(self, batch):
        self.clock.now += self.cost * len(batch)
        return super().encode_batch(batch)


def test_eta_comes_from_the_running_stage_own_rate(tmp_path, monkeypatch):
    import types

    from lib_qwen35.alignment import run

    clock = Clock()
    monkeypatch.setattr(run, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    rot = random_orthogonal(16, torch.Generator().manual_seed(5)).float()
    e4 = TimedEncoder(clock, 0.01, identity="fast4b")                 # the two stages run at very
    e6 = TimedEncoder(clock, 0.5, identity="slow06b", rotate=rot)     # different speeds (50x)
    seen = []
    run_fit(e4, e6, str(tmp_path / "out"), limit=300, batch_size=16, chunk_size=64, progress=seen.append)
    fast = [p for p in seen if p.stage == "embed 4B"]
    slow = [p for p in seen if p.stage == "embed 0.6B"]
    assert len(fast) == len(slow) == 19   # chunks of 64, 64, 64, 64, 44 in batches of 16
    middle = slow[9]   # what the user reads: 140 slow encodings of 0.5 s are left
    assert middle.done == 300 + 160 and middle.message == "embed 0.6B: 460/600 prompt encodings, ETA 1m10s"
    # the former estimate, remaining * elapsed / computed over both stages, said 25 s here
    assert (600 - middle.done) * middle.elapsed_s / middle.done == pytest.approx(25.26, abs=0.01)
    for p in fast:
        assert p.rate == pytest.approx(100.0) and p.eta_s == pytest.approx((300 - p.done) * 0.01)
        assert p.next_stage == "embed 0.6B"
    assert "ETA 0m03s for this stage, then embed 0.6B" in fast[0].message
    for p in slow:   # from the first 0.6B batch on: its own rate, not an average with the fast stage
        assert p.rate == pytest.approx(2.0) and p.eta_s == pytest.approx((600 - p.done) * 0.5)
        assert p.next_stage is None


def test_cancel_message_counts_both_encoders_and_resume_reuses_the_chunks(tmp_path):
    from lib_qwen35.alignment.chunk_cache import cached_prompt_count

    e4, e6 = fake_pair()
    clean = run_fit(e4, e6, str(tmp_path / "clean"), limit=300, batch_size=16, chunk_size=64)
    out = str(tmp_path / "resumed")

    def cancel_in_the_third_06b_chunk():
        return e6.calls - calls_before >= 1 + 4 + 4 + 1   # probe, chunks 0 and 1, a batch of chunk 2

    calls_before = e6.calls
    with pytest.raises(FitCancelled) as err:
        run_fit(e4, e6, out, limit=300, batch_size=16, chunk_size=64, cancel=cancel_in_the_third_06b_chunk)
    assert str(err.value) == ("fit cancelled in the 'embed 0.6B' stage. Cached on disk and reused when you run it "
                              "again: 4B 300/300 prompts, 0.6B 128/300 prompts.")
    assert err.value.cached == {"4b": 300, "06b": 128} and err.value.prompt_count == 300
    cache = os.path.join(out, "embedding_cache")
    assert sorted(len(os.listdir(os.path.join(cache, d))) for d in os.listdir(cache)) == [2, 5]

    prompts = generate_corpus(300)
    folder = next(d for d in os.listdir(cache) if d.startswith("06b-"))
    assert cached_prompt_count(e6, prompts, role="06b", cache_dir=cache, chunk_size=64) == 128
    assert cached_prompt_count(e6, prompts[:200], role="06b", cache_dir=cache, chunk_size=64) == 128
    assert cached_prompt_count(e4, prompts, role="4b", cache_dir=cache, chunk_size=64) == 300

    before4, before6 = e4.calls, e6.calls
    resumed = run_fit(e4, e6, out, limit=300, batch_size=16, chunk_size=64)
    assert e4.calls - before4 == 1                     # only the size probe: every 4B chunk was reused
    assert e6.calls - before6 == 1 + 4 + 4 + 3         # the probe, then chunks 2, 3 (64 each) and 4 (44) only
    meta = resumed.report["meta"]
    assert meta["encodings_from_cache"] == 428 and meta["encodings_computed"] == 172
    from safetensors.torch import load_file
    for name in (ROTATION_FILE, CALIBRATION_FILE):
        a, b = load_file(os.path.join(clean.out_dir, name)), load_file(os.path.join(resumed.out_dir, name))
        assert all(torch.equal(a[k], b[k]) for k in a)

    chunk = os.path.join(cache, folder, "chunk-00001.safetensors")
    with open(chunk, "r+b") as f:                      # a damaged chunk is not counted as cached
        f.truncate(40)
    assert cached_prompt_count(e6, prompts, role="06b", cache_dir=cache, chunk_size=64) == 300 - 64


def test_threading_event_cancels(tmp_path):
    e4, e6 = fake_pair()
    ev = threading.Event()
    ev.set()
    with pytest.raises(FitCancelled):
        run_fit(e4, e6, str(tmp_path), limit=100, cancel=ev)


def test_pipeline_bad_inputs(tmp_path):
    e4, _ = fake_pair()
    narrow = FakeEncoder(identity="narrow", width=8)
    with pytest.raises(FitInputError, match="embedding sizes differ"):
        run_fit(e4, narrow, str(tmp_path / "a"), limit=300)
    with pytest.raises(FitInputError, match="too few prompts for the dimension"):
        run_fit(e4, FakeEncoder(identity="b"), str(tmp_path / "b"), limit=15)
    bad = generate_corpus(60)[42].text
    with pytest.raises(NonFiniteOutputError, match="0.6B|06b"):
        run_fit(e4, FakeEncoder(identity="nan", nan_on=bad), str(tmp_path / "c"), limit=60)


def test_user_prompt_file(tmp_path):
    e4, e6 = fake_pair()
    path = tmp_path / "mine.jsonl"
    with open(path, "w") as f:
        for p in generate_corpus(200):
            f.write(json.dumps({"prompt": p.text, "category": "my_" + p.category}) + "\n")
    res = run_fit(e4, e6, str(tmp_path / "out"), prompt_file=str(path))
    assert res.metadata["corpus_id"].startswith("file:mine.jsonl:")
    assert res.metadata["corpus_version"] == "user" and res.metadata["prompt_count"] == 200
    cats = res.report["heldout"]["categories"]
    assert len(cats) >= 4 and all(c.startswith("my_") for c in cats)
    assert sum(b["n"] for b in cats.values()) == 20


# --- end to end between two synthetic checkpoints -----------------------------------------------------------
N_E2E = 200


SYN_06B = dict(vocab_size=2048, hidden_size=1024, intermediate_size=128, num_layers=1,
               num_attention_heads=8, num_key_value_heads=4, head_dim=64)


@pytest.fixture(scope="module")
def synthetic_pair(tmp_path_factory):
    from lib_qwen35.synthetic import qwen35 as synthetic
    from lib_qwen35.synthetic.qwen3 import write_checkpoint

    folder = tmp_path_factory.mktemp("fitpair")
    p4 = synthetic.write_checkpoint(folder / "qwen35_4b.safetensors", seed=11, num_layers=4)  # 3 DeltaNet + 1 attn
    p6 = write_checkpoint(folder / "qwen_3_06b_base.safetensors", seed=12, **SYN_06B)
    return p4, p6


def _encoders(pair):
    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
    from lib_qwen35.model.encoder import load_encoder
    from lib_qwen35.model.qwen3 import Qwen3Encoder
    from lib_qwen35.synthetic.qwen3 import SmallVocabTokenizer

    e4 = load_encoder(pair[0])
    e6 = Qwen3Encoder(pair[1], tokenizer=SmallVocabTokenizer(load_qwen3_tokenizer(), SYN_06B["vocab_size"]))
    return e4, e6


def test_end_to_end_synthetic_checkpoints(tmp_path, synthetic_pair):
    e4, e6 = _encoders(synthetic_pair)
    assert e4.output_size == 1024 and e6.config.hidden_size == 1024
    # a few hundred prompts (CI time): fewer training rows than the 1024 dims, hence the explicit opt-in;
    # the determined default path is exercised with the fake encoders above
    # not told it is a demo: the 4B file's synthetic mark says so (a tab fit on random weights is a demo too)
    res = run_fit(e4, e6, str(tmp_path), limit=N_E2E, batch_size=64, allow_underdetermined=True)
    # the published file format, read back by the output stage
    a, c = Alignment.load(res.rotation_path), Calibration.load(res.calibration_path)
    assert a.rotation.shape == (1024, 1024) and c.scale.shape == (1024,)
    for key in ("encoder_4b_hash", "encoder_06b_hash", "prompt_count", "corpus_version", "date"):
        assert a.metadata[key] and c.metadata[key]
    assert a.metadata["encoder_4b_hash"] == e4.short_hash and a.metadata["encoder_06b_hash"] == e6.short_hash
    assert a.metadata["prompt_count"] == str(N_E2E) and a.metadata["synthetic"] == "yes"
    assert res.report["underdetermined"]
    # recompute the held-out numbers through the output stage itself: the report measures what ships
    prompts = generate_corpus(N_E2E)
    held = [p for p, h in zip(prompts, heldout_mask(prompts)) if h]
    stage = OutputStage(alignment=a, strength=1.0, calibration=c)
    cos_before, cos_after = [], []
    xs = e4.encode_batch([e4.tokenize(p.text) for p in held])
    ys = e6.encode_batch([e6.tokenize(p.text) for p in held])
    for x, y in zip(xs, ys):
        y = y.mean(0)
        cos_before.append(torch.cosine_similarity(x.mean(0), y, dim=0).item())
        cos_after.append(torch.cosine_similarity(stage.apply(x).mean(0), y, dim=0).item())
    o = res.report["heldout"]["overall"]
    assert math.isclose(o["before"]["mean"], sum(cos_before) / len(held), abs_tol=1e-4)
    assert math.isclose(o["calibrated"]["mean"], sum(cos_after) / len(held), abs_tol=1e-4)
    assert o["strength_1.0"]["mean"] > o["before"]["mean"] + 0.3       # alignment raises held-out cosine
    assert o["calibrated"]["mean"] > o["before"]["mean"] + 0.3
    # compare_with_stock gives the same per-prompt number
    assert math.isclose(compare_with_stock(held[0].text, e4, e6, stage), cos_after[0], abs_tol=1e-4)
    assert math.isclose(compare_with_stock(held[0].text, e4, e6), cos_before[0], abs_tol=1e-4)
    assert "SYNTHETIC" in open(res.report_md).read()


def test_a_fit_on_an_unmarked_encoder_is_not_a_demo(tmp_path, synthetic_pair):
    """The same 4B tensors saved without the synthetic mark stand for a real download: synthetic no."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from lib_qwen35.model.encoder import load_encoder

    with safe_open(str(synthetic_pair[0]), framework="pt") as f:
        names = f.keys()
        save_file({k: f.get_tensor(k) for k in names}, str(tmp_path / "real_like.safetensors"))
    e6 = _encoders(synthetic_pair)[1]
    e4 = load_encoder(tmp_path / "real_like.safetensors")
    res = run_fit(e4, e6, str(tmp_path / "out"), limit=40, batch_size=64, allow_underdetermined=True)
    assert Alignment.load(res.rotation_path).metadata["synthetic"] == "no" and res.report["meta"]["synthetic"] is False


def test_a_bf16_fit_agrees_with_an_fp32_fit_of_the_same_prompts(tmp_path, synthetic_pair):
    """The CPU's bf16 matmuls (the default where the CPU has them) in both encoders move a fit's held-out cosines by
    at most 0.005 from an fp32 fit of the same prompts: the tolerance docs/performance.md states ("Accuracy of bf16
    matmuls")."""
    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
    from lib_qwen35.model.encoder import load_encoder
    from lib_qwen35.model.qwen3 import Qwen3Encoder
    from lib_qwen35.synthetic.qwen3 import SmallVocabTokenizer

    held = {}
    for dtype in ("fp32", "bf16"):
        e4 = load_encoder(synthetic_pair[0], dtype=dtype)
        e6 = Qwen3Encoder(synthetic_pair[1], dtype=dtype,
                          tokenizer=SmallVocabTokenizer(load_qwen3_tokenizer(), SYN_06B["vocab_size"]))
        assert e4.dtype == e6.dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        res = run_fit(e4, e6, str(tmp_path / dtype), limit=N_E2E, batch_size=64, allow_underdetermined=True)
        held[dtype] = res.report["heldout"]
    exact, fast = held["fp32"], held["bf16"]
    assert exact != fast                            # the bf16 fit did compute differently
    assert set(exact["categories"]) == set(fast["categories"])
    for group in [("overall", exact["overall"], fast["overall"])] + [
            (c, exact["categories"][c], fast["categories"][c]) for c in exact["categories"]]:
        name, a, b = group
        for key in ("before", "strength_1.0", "calibrated"):
            assert abs(a[key]["mean"] - b[key]["mean"]) <= 0.005, (name, key, a[key], b[key])
