"""Helpers that run against a real SD.Next (its source tree and the ../shared/sdnext_e2e harness's venv):

    real_pipeline.py   run by SD.Next's venv python: SD.Next's real AnimaTextToImagePipeline on the harness's
                       tiny Anima, with our seam patch (tests/live/test_sdnext_contract.py)
    ab.py              run by SD.Next's venv python: a real SD.Next server driven through its API, stock vs
                       ours (tests/live/test_sdnext_real_host_ab.py)
    ui.py              the SD.Next web UI in a real browser (tests/live/test_sdnext_browser.py)
"""
