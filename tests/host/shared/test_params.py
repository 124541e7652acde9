"""The per-generation settings (params): how UI, API and X/Y/Z values are coerced, and that a bad value is an
error naming its field, never a silently different one. (The API's argument order through a WebUI's own
alwayson_scripts handling: test_forge_api.py, test_sdnext_api.py.)"""

import pytest


def test_params_coercion_rules():
    from lib_qwen35.host.params import GenerationParams, InvalidSetting

    p = GenerationParams.from_args(["on", "", "yes", "0.5", "automatic", "0", None, "2"])
    assert p.enabled and p.use_alignment and not p.use_calibration
    assert p.encoder_file == "Automatic" and p.alignment_file == "Automatic"
    assert p.alignment_strength == 0.5 and p.output_scale == 2.0  # numbers may arrive as strings
    assert GenerationParams.from_args([]) == GenerationParams()
    # out of range or not a number: an error naming the field, never a silently different value
    for args, field in ((["on", "", "yes", "7"], "alignment_strength"), ([True] + [None] * 6 + ["nan"], "output_scale"),
                        ([True] + [None] * 6 + [-1], "output_scale"), ([True, None, True, "abc"], "alignment_strength")):
        with pytest.raises(InvalidSetting, match=field):
            GenerationParams.from_args(args)
    assert GenerationParams.requested_enabled([True, None, True, "abc"], None)
    assert not GenerationParams.requested_enabled([True], {"enabled": "Off"})
    assert GenerationParams().with_overrides({"output_scale": "2", "bogus": 1}).output_scale == 2.0
