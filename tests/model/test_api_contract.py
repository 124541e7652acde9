"""The public API's promises: numbers and dtypes checked up front, results the caller owns, and no
NaN/Inf ever returned from the output stage (the error names the step that overflowed)."""

import pytest
import torch

from lib_qwen35 import Alignment, Calibration, NonFiniteOutputError, OutputStage, Qwen35Error, load_encoder
from lib_qwen35 import __main__ as cli
from lib_qwen35.errors import InvalidArgumentError, OutputStageOverflowError

D = 1024


# ---- numbers and dtypes ------------------------------------------------------------------------------

@pytest.mark.parametrize("max_batch", [-1, 0, 2.5, True, "3", None])
def test_max_batch(anima_ckpt, max_batch):
    enc = load_encoder(anima_ckpt)
    with pytest.raises(InvalidArgumentError, match="max_batch must be an integer >= 1"):
        enc.encode_batch([[1, 2], [3]], max_batch=max_batch)
    assert isinstance(InvalidArgumentError("x"), ValueError)      # callers catching ValueError still work
    assert [o.shape for o in enc.encode_batch([[1, 2], [3]], max_batch=1)] == [(2, D), (1, D)]


@pytest.mark.parametrize("dtype", [torch.int8, torch.float64, torch.float8_e4m3fn, torch.complex64, "fp64", "int8",
                                   3, ["fp32"], object()])
def test_odd_dtypes_are_refused_before_the_file_is_read(anima_ckpt, monkeypatch, dtype):
    import lib_qwen35.model.encoder as encoder

    monkeypatch.setattr(encoder, "read_header", lambda *a: pytest.fail("the file was read"))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        load_encoder(anima_ckpt, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, "fp32", "FP32", "bf16", torch.bfloat16, "auto", None])
def test_usable_dtypes(anima_ckpt, dtype):
    assert load_encoder(anima_ckpt, dtype=dtype).encode_ids([1, 2]).dtype == torch.float32


@pytest.mark.parametrize("option, value", [("kernel", "fast"), ("head_norm", "plainn"), ("fp8_matmul", "yes"),
                                           ("upcast_cache_bytes", -1), ("upcast_cache_bytes", 1.5),
                                           ("kernel", ["chunk"]), ("cpu_code", "yes"), ("cpu_code", 1)])
def test_options_are_checked_before_the_file_is_read(anima_ckpt, monkeypatch, option, value):
    import lib_qwen35.model.encoder as encoder

    monkeypatch.setattr(encoder, "read_header", lambda *a: pytest.fail("the file was read"))
    with pytest.raises(InvalidArgumentError, match=option):
        load_encoder(anima_ckpt, **{option: value})


def test_qwen3_dtype_is_checked_before_the_file_is_read(tmp_path, monkeypatch):
    import lib_qwen35.model.qwen3 as qwen3

    monkeypatch.setattr(qwen3, "read_header", lambda *a: pytest.fail("the file was read"))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        qwen3.Qwen3Encoder(tmp_path / "x.safetensors", dtype=torch.int8)


@pytest.mark.parametrize("limit", [0, -5, 2.5, True, "10"])
def test_prompt_limits(limit):
    from fake_encoders import fake_pair

    from lib_qwen35.alignment.corpus import generate_corpus, load_prompts
    from lib_qwen35.alignment.run import run_fit

    with pytest.raises(InvalidArgumentError, match=">= 1"):
        load_prompts(None, limit)
    with pytest.raises(InvalidArgumentError, match=">= 1"):
        generate_corpus(limit)
    with pytest.raises(InvalidArgumentError, match=">= 1"):
        run_fit(*fake_pair(), "/nonexistent/never_created", limit=limit)


def test_fit_tab_zero_still_means_all(tmp_path):
    """The tab's slider says "0 = the whole corpus": that stays its own convention, mapped to None."""
    from lib_qwen35.alignment.corpus import load_prompts

    assert len(load_prompts(None, None)[0]) == 41277


@pytest.mark.parametrize("kwargs, message", [({"chunk_size": 0}, "chunk size"), ({"batch_size": 2.0}, "batch size"),
                                             ({"holdout": "0.1"}, "holdout")])
def test_fit_numbers(tmp_path, kwargs, message):
    from fake_encoders import fake_pair

    from lib_qwen35.alignment.run import run_fit
    from lib_qwen35.errors import FitInputError

    with pytest.raises(FitInputError, match=message):
        run_fit(*fake_pair(), str(tmp_path / "o"), limit=40, **kwargs)


# ---- results the caller owns -------------------------------------------------------------------------

def test_results_are_plain_tensors_the_caller_may_modify(anima_ckpt):
    enc = load_encoder(anima_ckpt)
    first = enc.encode("a cat on a roof")                      # computed
    reference = first.clone()
    assert not first.is_inference() and not first.requires_grad
    first.mul_(0).add_(7)                                      # in place: used to fail on the first call
    second = enc.encode("a cat on a roof")                     # from the cache: unharmed by the edit above
    assert torch.equal(second, reference) and not second.is_inference()
    second.add_(1)
    assert torch.equal(enc.encode("a cat on a roof"), reference)
    batch = enc.encode_batch([[1, 2, 3], [4], [5, 6]])
    for out in batch:
        assert not out.is_inference() and out.untyped_storage().nbytes() == out.numel() * 4
        out.zero_()
    assert not torch.equal(enc.encode_batch([[1, 2, 3]])[0], batch[0])


def test_qwen3_results_are_plain_tensors(tmp_path):
    from lib_qwen35.model.qwen3 import Qwen3Encoder
    from lib_qwen35.synthetic.qwen3 import write_checkpoint

    enc = Qwen3Encoder(write_checkpoint(tmp_path / "q.safetensors"))
    outs = enc.encode_batch([[1, 2, 3], [4]])
    for out in outs:
        assert not out.is_inference()
        out.add_(1)


# ---- overflow in the output stage --------------------------------------------------------------------

def _al(sign=1.0):
    """Finite, orthogonal, means of 3e38: R (x - mean_4b) + mean_06b exceeds float32 (6e38)."""
    return Alignment(sign * torch.eye(D), torch.full((D,), -3e38 * sign), torch.full((D,), 3e38 * sign),
                     path="/x/rotation.safetensors")


@pytest.mark.parametrize("stage, step", [
    (OutputStage(output_scale=1e39), "output_scale"),
    (OutputStage(calibration=Calibration(torch.full((D,), 3e38), torch.zeros(D), path="/x/cal.safetensors")),
     "calibration"),
    (OutputStage(alignment=_al()), "alignment"),
    (OutputStage(alignment=_al(-1.0), strength=0.5), "alignment"),
])
def test_overflow_is_named_everywhere(anima_ckpt, stage, step):
    enc = load_encoder(anima_ckpt)
    with pytest.raises(OutputStageOverflowError) as err:
        stage.apply(enc.encode_ids(enc.tokenize("1girl")))
    assert err.value.stage == step and "Fix:" in str(err.value)
    assert isinstance(err.value, NonFiniteOutputError)
    if step != "output_scale":
        assert "/x/" in str(err.value) and "max |" in str(err.value)
    with pytest.raises(OutputStageOverflowError):
        enc.encode("1girl", alignment=stage.alignment, calibration=stage.calibration,
                   output_scale=stage.output_scale, strength=stage.strength)


def test_cli_overflow_exits_2_and_saves_nothing(tmp_path, capsys, anima_ckpt):
    cal = tmp_path / "cal.safetensors"
    Calibration(torch.full((D,), 3e38), torch.zeros(D)).save(cal)
    out = tmp_path / "e.safetensors"
    argv = ["encode", "1girl", "--weights", str(anima_ckpt), "--save", str(out)]
    assert cli.main(argv + ["--scale", "1e39"]) == 2
    assert "output scale 1e+39 makes the embeddings overflow" in capsys.readouterr().err
    assert cli.main(argv + ["--calibration", str(cal)]) == 2
    assert f"the calibration file {cal} makes the embeddings overflow" in capsys.readouterr().err
    assert not out.exists()
    prompts = tmp_path / "p.txt"
    prompts.write_text("1girl\n", encoding="utf-8")
    assert cli.main(["stats", "--prompts", str(prompts), "--weights", str(anima_ckpt), "--scale", "1e39"]) == 2
    assert "token_l2" not in capsys.readouterr().out


def test_compare_with_stock_gets_the_same_error(anima_ckpt):
    from fake_encoders import FakeEncoder

    from lib_qwen35.alignment.compare import compare_with_stock

    with pytest.raises(OutputStageOverflowError, match="output scale"):
        compare_with_stock("1girl", load_encoder(anima_ckpt), FakeEncoder(d=D), OutputStage(output_scale=1e39))


def test_forge_generation_gets_the_same_error_and_the_next_one_works(tmp_path, engine_generation):
    from stubs.forge_neo.harness import forge_world, place_weights, write_calibration

    with forge_world(tmp_path, generation=engine_generation) as world:
        place_weights(world)
        with pytest.raises(Qwen35Error) as err:
            world.txt2img("1girl", "lowres", enabled=True, output_scale=1e39)
        text = str(err.value)
        assert text.startswith("Qwen3.5-4B text encoder (Anima): output scale 1e+39") and "Fix:" in text
        assert "fp16" not in text                              # not the dtype hint: the scale is the cause
        path = write_calibration(f"{world.models_dir}/qwen35/calibration_params.safetensors")
        Calibration(torch.full((D,), 3e38), torch.zeros(D)).save(path)
        with pytest.raises(Qwen35Error, match="the calibration file .*calibration_params.safetensors makes"):
            world.txt2img("1girl", "lowres", enabled=True, use_calibration=True)
        assert "Qwen35 TE: on" in world.txt2img("1girl", "lowres", enabled=True).info


def test_a_fit_whose_scale_does_not_fit_float32_is_refused(tmp_path):
    from lib_qwen35.alignment.run import _check_fitted_finite

    with pytest.raises(NonFiniteOutputError, match="'scale' does not fit in float32"):
        _check_fitted_finite({"rotation": torch.eye(2, dtype=torch.float64)},
                             {"scale": torch.tensor([1e39, 1.0], dtype=torch.float64)})
