"""The synthetic demo checkpoint that encode and stats use without --weights."""



from lib_qwen35.cli.demo import synthetic_weights_path
from lib_qwen35.cli.main import main


def test_damaged_demo_checkpoint_is_rebuilt(capsys):
    path = synthetic_weights_path()
    with open(path, "r+b") as f:
        f.truncate(1000)
    assert main(["encode", "a"]) == 0
