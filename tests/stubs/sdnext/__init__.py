"""Stand-ins for the SD.Next modules the extension touches (our own minimal re-implementations of the same
names, signatures and behaviour, modelled on SD.Next's code at commit 058a7f0cf, 2026-07-23; no SD.Next
code is copied). tests/live/test_sdnext_contract.py holds them against a real SD.Next tree (SDNEXT_DIR).

    site/modules/           shared (opts, state), scripts + scripts_manager (Script, the runner: hooks wrapped,
                            per_script_args), script_callbacks, processing (process_images, process_base's
                            exception handling, hires on a switched pipeline), sd_models (pipeline switch),
                            sd_hijack_te (the prompt cache keyed on the positive prompt), devices, sd_offload,
                            infotext (parse), generation_parameters_copypaste (paste), ui_components, paths,
                            call_queue, errors, infotext_utils (empty, as in SD.Next), api/script
    site/pipelines/anima/   pipeline (AnimaTextToImagePipeline: _encode_prompt's zeros, shapes, dtypes),
                            anima_image (img2img subclass), modeling_llm_adapter (the adapter, no mask)
    site/builtin_scripts/   xyz_grid.py (AxisOption(label, tipe, apply, fmt=...), axis_options, a cell runner)
    site/installer.py       installer.version
    ../gradio_site/         gradio (shared with tests/stubs/forge_neo)
    fakes.py                the tokenizers and the Qwen3 text encoder the pipeline holds

`installed()` puts them on sys.path for a test and removes every stub module afterwards.
"""

import os

from stubs import sites as stub_sites

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")
STUB_TOP_LEVEL = ("gradio", "modules", "pipelines", "installer", "xyz_grid.py", "qwen35_anima.py", "qwen35_alignment_tab.py")


def purge(prefixes=STUB_TOP_LEVEL) -> None:
    stub_sites.purge(prefixes)


def installed():
    return stub_sites.installed(SITE, STUB_TOP_LEVEL)
