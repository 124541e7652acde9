"""The fit's progress bar on stderr."""

import io

from lib_qwen35.alignment.run import FitProgress
from lib_qwen35.cli.progress import StderrProgress


def test_stderr_progress_lines():
    buf = io.StringIO()
    bar = StderrProgress(buf)
    for done in range(0, 101, 10):
        bar(FitProgress("embed 4B", done, 100, 1.0 + done, None if done == 0 else 5.0, None if done == 0 else 2.5, "embed 0.6B"))
    bar(FitProgress("done", 100, 100, 200.0, 0.0))
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("[") and "ETA ?" in lines[0] and "(?/s)" in lines[0]
    assert "(2.5/s)" in lines[1] and "ETA 0m05s (+ embed 0.6B)" in lines[1] and lines[-1].split()[2] == "done"
