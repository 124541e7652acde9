"""Faithful stand-ins for the Forge Neo modules the extension touches (our own minimal re-implementations
of the same names, signatures and behaviour, modelled on Forge Neo v3.5's code; no Forge code is copied).

    ../gradio_site/gradio/  just enough of gradio for Script.ui(): components, blocks, update/skip (shared
                            with tests/stubs/sdnext)
    site/modules/           shared, options, scripts, script_callbacks, processing, ui_components,
                            infotext_utils, paths, api/api (alwayson args), errors
    site/backend/           memory_management, args, text_processing (anima_engine = legacy generation;
                            _comfy + anima_engine_qwen06 = the rewritten one; parsing, emphasis),
                            diffusion_engine/anima (the Anima engine object holding the text engine, per generation)
    site/modules_forge/     forge_version
    site/builtin_scripts/   xyz_grid.py (AxisOption classes, axis_options, a cell runner)
    site/launch.py          is_installed / run_pip

`installed()` puts them on sys.path for a test and removes every stub module afterwards, so a later
test can import the real Forge from FORGE_NEO_DIR in the same process.
"""

import os

from stubs import sites as stub_sites

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")
STUB_TOP_LEVEL = ("gradio", "modules", "modules_forge", "backend", "launch", "xyz_grid.py", "qwen35_anima.py")


def purge(prefixes=STUB_TOP_LEVEL) -> None:
    stub_sites.purge(prefixes)


def installed():
    return stub_sites.installed(SITE, STUB_TOP_LEVEL)
