"""One WebUI server at a time on a small machine: the lock file an environment variable names, held while a server
runs (FORGE_NEO_LOCK for Forge Neo's, SDNEXT_LOCK for SD.Next's; usually both /tmp/forge_run.lock)."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def held(variable: str):
    """Hold the lock file the environment variable names (flock, as `flock FILE cmd` does) while a server
    runs; nothing if unset."""
    path = os.environ.get(variable)
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
