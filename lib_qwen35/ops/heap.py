"""Give freed heap memory back to the operating system after loading an encoder (glibc's malloc_trim).

Why: glibc serves large blocks with mmap and returns them to the system when freed, but each such free raises its
mmap threshold (up to 32 MB). Once any weight-sized tensor has been freed in the process (by the WebUI, or by the
one-time bf16 measurement, model/devices.py), the separate q/k/v and gate/up matrices that loading reads and then
fuses into one come from the heap instead, and the holes they leave stay resident: 1.1-1.3 GiB for the 4B file,
measured (docs/performance.md, "Memory"). malloc_trim(0) hands those free pages back. Where the C library has no
malloc_trim (Windows, macOS, musl) this does nothing: their allocators are not the one measured.
"""

from __future__ import annotations

import ctypes
import sys


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim      # the C library the process already runs on
    except (OSError, AttributeError):             # no such symbol: not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def available() -> bool:
    """Whether this process's C library can give freed heap pages back (glibc)."""
    return _TRIM is not None


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; True where some were returned. Cheap (a few milliseconds after
    a 4.8 GB load); never raises."""
    return bool(_TRIM(0)) if _TRIM is not None else False
