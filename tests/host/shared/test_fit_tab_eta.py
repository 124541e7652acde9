"""The alignment tab's progress line carries the fit's ETA at the running stage's own measured rate (alignment/run.py
measures it; the tab shows it as it comes), whatever speed the CPU path runs at."""

import types

import pytest

from stubs.forge_neo.harness import forge_world, place_weights


@pytest.fixture
def world(tmp_path):
    with forge_world(tmp_path) as w:
        yield w


def test_the_tab_shows_each_stages_eta_at_its_measured_rate(world, monkeypatch):
    from lib_qwen35.alignment import chunk_cache, run
    from lib_qwen35.host import fit_tab
    from lib_qwen35.host.fit_encoders import OnDevice

    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(run, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
    real = chunk_cache._encode

    def timed(encoder, batch):      # the 4B costs 0.5 s a prompt, the stock 0.6B 0.05 s
        clock.now += (0.5 if isinstance(encoder, OnDevice) else 0.05) * len(batch)
        return real(encoder, batch)

    monkeypatch.setattr(chunk_cache, "_encode", timed)
    place_weights(world)
    shown = []
    tab = fit_tab.FitTab(on_progress=lambda p: shown.append((p, tab.view().progress_text)))
    assert tab.start(fit_tab.FitRequest(name="eta", limit=100, batch_size=10, device="cpu",
                                        allow_underdetermined=True)).running
    assert tab.wait(60).state == "done"
    texts = {p.message: text for p, text in shown}
    assert all(text == message for message, text in texts.items())        # the tab shows run_fit's line as it is
    first_4b = next(p for p, _ in shown if p.stage == "embed 4B")
    assert first_4b.rate == pytest.approx(2.0) and first_4b.eta_s == pytest.approx(90 * 0.5)
    assert first_4b.message == "embed 4B: 10/200 prompt encodings, ETA 0m45s for this stage, then embed 0.6B"
    first_06b = next(p for p, _ in shown if p.stage == "embed 0.6B")
    assert first_06b.rate == pytest.approx(20.0) and first_06b.message.endswith("ETA 0m04s")
