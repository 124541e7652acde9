"""Putting a folder of WebUI stand-ins (tests/stubs/forge_neo/site, tests/stubs/sdnext/site) on sys.path for a
test, and taking every stand-in module away afterwards, so that the next test can use another WebUI's (or
the real one). The running WebUI is detected again inside (lib_qwen35.host.selection)."""

import contextlib
import os
import sys

GRADIO_SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradio_site")


def purge(prefixes) -> None:
    for name in list(sys.modules):
        if name in prefixes or any(name.startswith(p + ".") for p in prefixes):
            del sys.modules[name]


@contextlib.contextmanager
def installed(site: str, prefixes):
    from lib_qwen35.host import selection

    purge(prefixes)
    sys.path[:0] = [site, GRADIO_SITE]
    selection.use(None)
    try:
        yield
    finally:
        for path in (site, GRADIO_SITE):
            if path in sys.path:
                sys.path.remove(path)
        purge(prefixes)
        selection.use(None)


def reset_shared_state(encoder_loader=None):
    """Forget what the shared host modules keep at module level (it outlives stub purges); returns the
    fresh module-level Controller."""
    from lib_qwen35.host import active_state, controller, file_locator, selection, status

    active_state.disarm()
    selection.use(None)
    file_locator._header_cache.clear()
    file_locator._skipped.clear()
    file_locator._reported.clear()
    status._state.update(kind="idle", text="")
    status._last_encode.clear()
    controller._controller = controller.Controller(encoder_loader)
    return controller._controller
