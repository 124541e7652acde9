"""The extension's Settings section (ext_settings), with the Forge stand-in as the host: registered with its
defaults, read back sanitised. (SD.Next's: tests/host/sdnext/test_sdnext_settings.py.)"""

import pytest

from stubs.forge_neo.harness import forge_world


@pytest.fixture
def world(tmp_path, engine_generation):
    with forge_world(tmp_path, generation=engine_generation) as w:
        yield w


def test_settings_section_is_registered_with_defaults(world):
    from modules import shared

    from lib_qwen35.host import ext_settings

    keys = [ext_settings.KEY_SEARCH_DIRS, ext_settings.KEY_DEVICE, ext_settings.KEY_DTYPE, ext_settings.KEY_KEEP_RESIDENT,
            ext_settings.KEY_EMBEDDING_CACHE, ext_settings.KEY_ENCODER_CACHE]
    for key in keys:
        info = shared.opts.data_labels[key]
        assert info.section == ext_settings.SECTION and info.label
    assert shared.opts.data_labels[ext_settings.KEY_DTYPE].component_args == {"choices": ["auto", "bf16", "fp16", "fp32"]}
    assert ext_settings.read() == ext_settings.DEFAULTS


def test_settings_are_read_and_sanitised(world):
    from modules import shared

    from lib_qwen35.host import ext_settings

    shared.opts.qwen35_te_search_dirs = " /a/b ; /c\n/d "
    shared.opts.qwen35_te_device = "CPU"
    shared.opts.qwen35_te_dtype = "int4"  # not a choice: default
    shared.opts.qwen35_te_keep_resident = True
    shared.opts.qwen35_te_embedding_cache_size = 32.0
    s = ext_settings.read()
    assert s.search_dirs == ("/a/b", "/c", "/d") and s.device == "cpu" and s.dtype == "auto"
    assert s.keep_resident and s.embedding_cache_size == 32
