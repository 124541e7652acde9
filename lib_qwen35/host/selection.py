"""Which WebUI is running us.

Each WebUI package says whether it recognises the process it runs in (`WebUIHost.detect`: importable
modules and what they offer, never a version string). Exactly one must: none (or, impossibly, two) gives
`UnknownHost`, which says so loudly in the console and the accordion and changes nothing. A recognised
WebUI is chosen once, at the first use inside it, and kept; an unrecognised one is looked for again at
each use (cheap), so code imported before the WebUI's modules still finds it later.

This module sits above the WebUI packages: it imports them, and they never import it (nor a shared module
that does). The shared modules that need the running WebUI ask `current()`.
"""

from __future__ import annotations

import threading

from . import messages
from .forge_neo import ForgeNeoHost
from .interface import WebUIHost
from .sdnext import SDNextHost
from .unknown import UnknownHost


def hosts() -> tuple[type[WebUIHost], ...]:
    """Every WebUI package's host class; a third WebUI is one more entry."""
    return (ForgeNeoHost, SDNextHost)


_lock = threading.Lock()
_current: WebUIHost | None = None
_warned = False


def current() -> WebUIHost:
    global _current
    with _lock:
        if _current is None or isinstance(_current, UnknownHost):
            _current = select(_current)
        return _current


def select(unknown: UnknownHost | None = None) -> WebUIHost:
    """The recognised WebUI's host; else `unknown` (kept, with its state) or a new UnknownHost."""
    global _warned
    recognised = [cls for cls in hosts() if _detects(cls)]
    if len(recognised) == 1:
        return recognised[0]()
    if unknown is not None and unknown.recognised == [cls.name for cls in recognised]:
        return unknown
    host = UnknownHost(recognised)
    if not _warned:
        _warned = True
        messages.console(f"warning: {host.unsupported(None)}")
    return host


def use(host: WebUIHost | None) -> None:
    """Tests (and a WebUI whose modules were reloaded): set, or with None forget, the running host."""
    global _current
    with _lock:
        _current = host


def _detects(cls) -> bool:
    try:
        return bool(cls.detect())
    except Exception:  # noqa: BLE001 - detection must never take the WebUI down
        return False
