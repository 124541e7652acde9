"""What encode and stats share: the emphasis option and the output-stage options."""


import pytest

from repo import ROOT

from lib_qwen35.cli.main import main

DATA = ROOT / "alignment_data"


def test_encode_and_stats_remove_emphasis_like_the_webui(capsys, tmp_path, anima_ckpt):
    from lib_qwen35.files.tokenizer import load_qwen35_tokenizer

    tok = load_qwen35_tokenizer()
    prompt = "1girl, (masterpiece:1.2), [blurry], ((detailed))"
    expected = {"comfy": "1girl, masterpiece, [blurry], detailed", "a1111": "1girl, masterpiece, blurry, detailed",
                "none": prompt}
    for syntax, text in expected.items():
        args = ["encode", prompt, "--weights", str(anima_ckpt)] + (["--emphasis", syntax] if syntax != "comfy" else [])
        assert main(args) == 0
        out = capsys.readouterr().out
        assert f"tokens    {len(tok.encode(text))} " in out, (syntax, out)
        assert (f"text      {text}" in out) == (syntax != "none")
    # stats: the weighted and the plain prompt are the same text, so the same embedding
    f = tmp_path / "p.txt"
    f.write_text("(masterpiece:1.2), 1girl\nmasterpiece, 1girl\n", encoding="utf-8")
    assert main(["stats", "--prompts", str(f), "--weights", str(anima_ckpt), "--json", str(tmp_path / "m.json")]) == 0
    import json
    assert json.loads((tmp_path / "m.json").read_text())["cross_prompt_similarity"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("command", [["encode", "x"], ["stats", "--prompts", str(DATA / "example_prompts.txt")]])
def test_strength_without_alignment_is_an_error_not_ignored(capsys, command):
    assert main(command + ["--strength", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--strength" in err and "--alignment" in err
