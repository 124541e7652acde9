"""The stats command, as a user runs it."""


from repo import ROOT

from lib_qwen35.cli.main import main

DATA = ROOT / "alignment_data"


def test_stats_over_a_prompt_file(capsys, tmp_path, anima_ckpt):
    f = tmp_path / "p.txt"
    f.write_text("1girl\nscenery, mountains\n\na cat\n", encoding="utf-8")
    assert main(["stats", "--prompts", str(f), "--weights", str(anima_ckpt), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "3 prompts" in out and "cross_prompt_similarity" in out


def test_non_utf8_prompt_file(capsys, tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes(b"caf\xe9\n")
    assert main(["stats", "--prompts", str(f)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_stats_reads_prompt_files_with_the_same_reader_as_fit(capsys, tmp_path, anima_ckpt):
    from lib_qwen35.alignment.corpus import read_prompt_file

    for name in ("example_prompts.txt", "example_prompts.jsonl"):
        assert main(["stats", "--prompts", str(DATA / name), "--weights", str(anima_ckpt)]) == 0
        assert f"{len(read_prompt_file(DATA / name))} prompts encoded" in capsys.readouterr().out
    assert len(read_prompt_file(DATA / "example_prompts.txt")) == 14          # its first line is a comment
    only_comment = tmp_path / "todo.txt"
    only_comment.write_text("# prompts go here\n\n", encoding="utf-8")
    assert main(["stats", "--prompts", str(only_comment), "--weights", str(anima_ckpt)]) == 2
    err = capsys.readouterr().err
    assert "todo.txt" in err and "no prompts" in err
