"""GraphRunner: bucketing, exact right padding, static-buffer plumbing, fallbacks. CPU tests use a stand-in for
the CUDA capture with the same contract (reads the static ids at replay time, overwrites one static output)."""

import contextlib
import inspect

import pytest
import torch

from lib_qwen35 import load_encoder
from lib_qwen35.ops.cuda_graphs import DEFAULT_BUCKETS, PAD_ID, GraphRunner, bucket_for, cuda_capture

VOCAB = 248320


def _ids(B, T, seed=1):
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


class FakeCapture:
    """CPU stand-in for cuda_capture: 'capturing' runs fn once; 'replay' recomputes from the static ids into the
    same static output tensor, exactly like a CUDA graph replay overwrites its output."""

    def __init__(self, fail=False):
        self.calls, self.fail = 0, fail

    def __call__(self, fn, static_ids, warmup, pool):
        self.calls += 1
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        out = fn(static_ids)
        return (lambda: out.copy_(fn(static_ids))), out


@pytest.fixture()
def backbone(anima_ckpt):
    return load_encoder(anima_ckpt, dtype="fp32").backbone


def test_bucket_for():
    assert bucket_for(1, DEFAULT_BUCKETS) == 64
    assert bucket_for(64, DEFAULT_BUCKETS) == 64
    assert bucket_for(77, DEFAULT_BUCKETS) == 128
    assert bucket_for(300, DEFAULT_BUCKETS) == 320       # not 512: the ladder keeps padding small
    assert bucket_for(1024, DEFAULT_BUCKETS) == 1024
    assert bucket_for(2049, DEFAULT_BUCKETS) is None
    assert bucket_for(3, (16, 4, 8)) == 4                 # order of the given buckets does not matter


def test_plan_and_reasons(backbone):
    r = GraphRunner(backbone, torch.float32, capture=FakeCapture(), max_graph_tokens=4096)
    assert r.plan(1, 77) == ((1, 128), None)
    assert r.plan(3, 300) == ((4, 320), None)
    key, why = r.plan(1, 5000)
    assert key is None and "largest bucket" in why
    key, why = r.plan(17, 10)
    assert key is None and "batch 17" in why
    key, why = r.plan(16, 512)
    assert key is None and "max_graph_tokens" in why


def test_unavailable_on_cpu_runs_eager_exactly(backbone):
    assert GraphRunner.available("cpu") is False
    assert GraphRunner.available(torch.device("cpu")) is False
    r = GraphRunner(backbone, torch.float32)
    assert not r.enabled
    ids = _ids(1, 20)
    with torch.inference_mode():
        want = backbone(ids, torch.float32)
    got = r(ids)
    assert torch.equal(got, want)
    assert r.stats == {"replays": 0, "captures": 0, "eager_runs": 1, "capture_failures": 0}
    assert "cpu" in r.describe()


def test_right_padding_is_exact(backbone):
    """The claim the graphs rest on: padding ids on the right (and extra batch rows) leaves real positions unchanged."""
    r = GraphRunner(backbone, torch.float32, buckets=(192,), batch_buckets=(4,), pad_eager=True)
    for B, T in ((1, 5), (2, 70), (3, 129)):
        ids = _ids(B, T, seed=T)
        with torch.inference_mode():
            want = backbone(ids, torch.float32)
            padded = torch.full((4, 192), PAD_ID, dtype=torch.long)
            padded[:B, :T] = ids
            padded[:B, T:] = 12345               # any id: what follows a position never changes it
            got_direct = backbone(padded, torch.float32)[:B, :T]
        got = r(ids)
        assert got.shape == want.shape == (B, T, 1024)
        scale = want.abs().max().item()
        assert scale > 0.1
        assert (got_direct - want).abs().max().item() <= 1e-5 * max(1.0, scale)
        assert (got - want).abs().max().item() <= 1e-5 * max(1.0, scale)


def test_captured_path_matches_eager_and_reuses_graphs(backbone):
    cap = FakeCapture()
    r = GraphRunner(backbone, torch.float32, buckets=(64, 128), batch_buckets=(1, 2), capture=cap)
    a, b = _ids(1, 40, seed=2), _ids(1, 50, seed=3)
    with torch.inference_mode():
        want_a, want_b = backbone(a, torch.float32), backbone(b, torch.float32)
    got_a = r(a)
    got_b = r(b)                                   # same bucket (1, 64): replays, no new capture
    assert cap.calls == 1 and r.captured == [(1, 64)]
    assert r.stats["replays"] == 2 and r.stats["eager_runs"] == 0
    # got_a is checked after the second replay: it must be a copy, not a view of the static output
    assert (got_a - want_a).abs().max().item() <= 1e-5
    assert (got_b - want_b).abs().max().item() <= 1e-5
    got_c = r(_ids(2, 100, seed=4))
    assert cap.calls == 2 and r.captured == [(1, 64), (2, 128)]
    assert got_c.shape == (2, 100, 1024)
    assert "CUDA graphs on" in r.describe() and "1x64" in r.describe()


def test_shape_beyond_buckets_falls_back_to_eager(backbone):
    cap = FakeCapture()
    r = GraphRunner(backbone, torch.float32, buckets=(64,), batch_buckets=(1,), capture=cap)
    ids = _ids(1, 70)
    with torch.inference_mode():
        want = backbone(ids, torch.float32)
    got = r(ids)
    assert cap.calls == 0 and r.stats["eager_runs"] == 1
    assert torch.equal(got, want)
    assert "largest bucket" in r.describe()


def test_failed_capture_falls_back_and_is_not_retried(backbone):
    cap = FakeCapture(fail=True)
    r = GraphRunner(backbone, torch.float32, buckets=(64,), batch_buckets=(1,), capture=cap)
    ids = _ids(1, 30)
    with torch.inference_mode():
        want = backbone(ids, torch.float32)
    for _ in range(2):
        assert torch.equal(r(ids), want)
    assert cap.calls == 1                          # not retried
    assert r.stats["capture_failures"] == 1 and r.stats["eager_runs"] == 2
    assert "capture of 1x64 failed" in r.describe()


def test_reset_drops_graphs(backbone):
    cap = FakeCapture()
    r = GraphRunner(backbone, torch.float32, buckets=(64,), batch_buckets=(1,), capture=cap)
    r(_ids(1, 10))
    r.reset()
    assert r.captured == []
    r(_ids(1, 10))
    assert cap.calls == 2


def test_bad_input_shape(backbone):
    r = GraphRunner(backbone, torch.float32)
    with pytest.raises(ValueError):
        r(torch.zeros(5, dtype=torch.long))


def test_cuda_capture_is_thread_local(monkeypatch):
    """The WebUI runs other threads; in torch's default 'global' capture mode a CUDA call from any of them
    invalidates our capture. cuda_capture runs here against stand-ins for torch.cuda's stream and graph objects;
    the graph context checks its arguments against the real torch.cuda.graph signature."""
    seen = {}
    real_signature = inspect.signature(torch.cuda.graph.__init__)

    class Stream:
        def __init__(self, device=None):
            pass

        def wait_stream(self, other):
            pass

    class GraphContext:
        def __init__(self, cuda_graph, **kwargs):
            real_signature.bind(self, cuda_graph, **kwargs)     # raises for arguments torch would refuse
            seen.update(kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: type("Graph", (), {"replay": lambda self: None})())
    monkeypatch.setattr(torch.cuda, "graph", GraphContext)
    calls = []
    replay, out = cuda_capture(lambda ids: calls.append(ids) or ids + 1, torch.zeros(1, 4, dtype=torch.long),
                               warmup=2, pool="the pool")
    assert seen.get("capture_error_mode") == "thread_local" and seen["pool"] == "the pool"
    assert len(calls) == 3 and torch.equal(out, torch.ones(1, 4, dtype=torch.long))    # 2 warm-ups + the capture


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_equals_eager_on_gpu(anima_ckpt):
    enc = load_encoder(anima_ckpt, device="cuda", dtype="bf16", kernel="chunk")   # no fla compile in the test step
    r = GraphRunner(enc.backbone, torch.bfloat16, buckets=(64, 192), batch_buckets=(1, 4))
    assert r.enabled
    for B, T in ((1, 77), (3, 150)):
        ids = _ids(B, T).cuda()
        with torch.inference_mode():
            want = enc.backbone(ids, torch.bfloat16).float()
        got = r(ids).float()
        assert r.last_fallback is None, r.describe()
        cos = torch.nn.functional.cosine_similarity(got, want, dim=-1)
        assert cos.min().item() >= 0.999, cos.min().item()     # bf16 kernels may pick other tilings per shape
    assert len(r.captured) == 2
