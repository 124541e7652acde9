"""ops/heap.py: after glibc's mmap threshold has risen (any freed weight-sized tensor raises it), weight-sized
temporaries come from the heap and leave resident holes when freed; release_free_memory gives them back. The
encoder's load calls it after each layer (model/qwen35.py)."""

import pytest
import torch

from lib_qwen35.ops import heap


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not heap.available(), reason="the C library has no malloc_trim (not glibc)")
def test_freed_heap_holes_go_back_to_the_system():
    big = torch.ones(30 << 20, dtype=torch.uint8)       # mmapped; freeing it raises the threshold to 30 MB
    del big
    start = rss_mib()
    parts, keepers = [], []
    for _ in range(40):                                 # 8 MB parts with live blocks between them: holes. The
        parts.append(torch.ones(8 << 20, dtype=torch.uint8))     # blocks are 1 MB: smaller ones fit the free
        keepers.append(torch.ones(1 << 20, dtype=torch.uint8))   # fragments earlier tests leave, the parts then
    del parts                                                    # lie side by side and free() trims them itself
    before = rss_mib()
    assert before - start > 200, (start, before)        # the holes are resident: there is something to give back
    assert heap.release_free_memory() is True
    after = rss_mib()
    assert before - after > 200, (before, after)        # most of the 320 MB of holes left the RSS
    assert sum(int(k[0]) for k in keepers) == 40        # what stays alive is untouched


def test_without_malloc_trim_it_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_TRIM", None)
    assert heap.available() is False and heap.release_free_memory() is False


def test_the_encoders_load_gives_back_each_layers_unfused_parts(anima_ckpt, monkeypatch):
    from lib_qwen35.model.encoder import Encoder

    calls = []
    monkeypatch.setattr(heap, "release_free_memory", lambda: calls.append(1) or True)
    enc = Encoder(anima_ckpt, dtype="fp32")
    assert len(calls) == enc.config.num_layers
