"""Integration with a real Forge Neo checkout (skipped unless FORGE_NEO_DIR points to one).

    FORGE_NEO_DIR=/path/to/sd-webui-forge-neo/webui python -m pytest tests/test_forge_neo_integration.py

It imports Forge's real `backend/text_processing/anima_engine.py` (AnimaTextProcessingEngine) and real
prompt parser, builds the engine with Forge's bundled Anima tokenizers (transformers, as Forge's loader
does) and a stand-in Qwen3-0.6B + LLM adapter, installs our hook and checks shapes, devices, dtypes and
the bit-identical stock path. Modules that need Forge's heavy dependencies (gradio, psutil, rich,
comfy_kitchen, lark) are replaced by minimal stand-ins only when they cannot be imported. The Forge APIs
the extension calls elsewhere (scripts, processing caches, xyz_grid, infotext, options, callbacks,
memory management, launch) are checked against the checkout's source with `ast`, without importing it.
"""

import ast
import inspect
import os
import sys
import types

import pytest
import torch

from forge_stubs.fakes import StubQwen3TextEncoder
from forge_stubs.harness import synthetic_checkpoint

FORGE_DIR = os.environ.get("FORGE_NEO_DIR", "")
if FORGE_DIR and os.path.isdir(os.path.join(FORGE_DIR, "webui", "backend")):
    FORGE_DIR = os.path.join(FORGE_DIR, "webui")  # the repository root was given

pytestmark = pytest.mark.skipif(not (FORGE_DIR and os.path.isfile(os.path.join(FORGE_DIR, "backend", "text_processing", "anima_engine.py"))),
                                reason="set FORGE_NEO_DIR to a Forge Neo checkout (its webui/ folder)")

ANIMA_HF = os.path.join(FORGE_DIR, "backend", "huggingface", "circlestone-labs", "Anima")
PROMPTS = ["1girl, (masterpiece:1.2), [blurry], looking at viewer", "", "a cat BREAK a dog, 日本語, ✨", "x" * 600]


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _try_import(name):
    try:
        __import__(name)
        return sys.modules[name]
    except Exception:
        sys.modules.pop(name, None)
        return None


@pytest.fixture(scope="module")
def forge():
    """Real Forge backend modules on sys.path, with light stand-ins where a dependency is missing."""
    from forge_stubs import purge

    saved_path, saved_argv = list(sys.path), list(sys.argv)
    sys.argv = [saved_argv[0]] + ([] if torch.cuda.is_available() else ["--cpu"])  # Forge parses its flags at import
    purge()
    sys.path.insert(0, FORGE_DIR)
    opts = types.SimpleNamespace(emphasis="Original")
    sys.modules["modules"] = _module("modules", __path__=[os.path.join(FORGE_DIR, "modules")])
    sys.modules["modules.shared"] = _module("modules.shared", opts=opts)
    sys.modules["modules"].shared = sys.modules["modules.shared"]
    replaced = []
    if _try_import("backend.memory_management") is None:
        replaced.append("backend.memory_management")
        sys.modules["backend.memory_management"] = _module(
            "backend.memory_management", text_encoder_device=lambda: torch.device("cpu"), text_encoder_dtype=lambda device=None: torch.float16,
            get_torch_device=lambda: torch.device("cpu"), cpu_mode=lambda: True, free_memory=lambda *a, **k: [], soft_empty_cache=lambda force=False: None)
    if _try_import("backend.args") is None:
        replaced.append("backend.args")
        sys.modules["backend.args"] = _module("backend.args", dynamic_args=types.SimpleNamespace(last_extra_generation_params={}), args=types.SimpleNamespace())
    if _try_import("backend.text_processing.emphasis") is None:  # imports modules.prompt_parser (lark)
        replaced.append("backend.text_processing.emphasis")

        class Original:
            name = "Original"

        sys.modules["backend.text_processing.emphasis"] = _module(
            "backend.text_processing.emphasis", get_current_option=lambda name: Original, uses_emphasis=lambda text: "(" in text or "[" in text)
    anima_engine = __import__("backend.text_processing.anima_engine", fromlist=["AnimaTextProcessingEngine"])
    sys.argv = saved_argv
    assert anima_engine.__file__.startswith(FORGE_DIR), anima_engine.__file__  # the real one
    try:
        yield types.SimpleNamespace(anima_engine=anima_engine, replaced=replaced)
    finally:
        from lib_qwen35.forge import active_state, hook

        active_state.disarm()
        hook.restore_all()
        purge()
        sys.path[:] = saved_path
        sys.argv = saved_argv


@pytest.fixture(scope="module")
def tokenizers():
    transformers = pytest.importorskip("transformers")
    qwen = transformers.Qwen2Tokenizer.from_pretrained(os.path.join(ANIMA_HF, "tokenizer"))
    t5 = transformers.T5TokenizerFast.from_pretrained(os.path.join(ANIMA_HF, "tokenizer_2"))
    return qwen, t5


@pytest.fixture
def engine(forge, tokenizers):
    text_encoder = StubQwen3TextEncoder(dtype=torch.float16)
    return forge.anima_engine.AnimaTextProcessingEngine(text_encoder=text_encoder, qwen_tokenizer=tokenizers[0], t5_tokenizer=tokenizers[1])


def _stock(engine, tokens):
    return type(engine).process_tokens(engine, [tokens], [[1.0] * len(tokens)])


def test_seam_signatures_are_what_the_hook_expects(forge):
    from lib_qwen35.forge import model_detection

    print(f"real Forge at {FORGE_DIR}; stand-ins used for: {forge.replaced or 'nothing'}")
    cls = forge.anima_engine.AnimaTextProcessingEngine
    assert list(inspect.signature(cls.process_tokens).parameters) == ["self", "batch_tokens", "batch_multipliers"]
    assert list(inspect.signature(cls.__init__).parameters) == ["self", "text_encoder", "qwen_tokenizer", "t5_tokenizer"]
    source = open(os.path.join(FORGE_DIR, "backend", "diffusion_engine", "anima.py"), encoding="utf-8").read()
    assert f"self.{model_detection.ENGINE_ATTR} = AnimaTextProcessingEngine(" in source


def test_disarmed_hook_is_bit_identical_on_the_real_engine(engine):
    from lib_qwen35.forge import active_state, hook

    stock = [engine([p])[0] for p in PROMPTS]
    assert hook.install(engine)
    assert not active_state.is_armed()
    for prompt, reference in zip(PROMPTS, stock):
        cond = engine([prompt])[0]
        assert cond.shape == (1, max(512, reference.shape[1]), 1024) and torch.equal(cond, reference)
    hook.restore(engine)
    assert "process_tokens" not in vars(engine)


def test_text_recovered_from_forges_qwen3_ids(engine):
    from lib_qwen35.forge.text_recovery import recover_text
    from lib_qwen35.tokenizer import load_qwen3_tokenizer

    ours = load_qwen3_tokenizer()
    expected = ["1girl, masterpiece, blurry, looking at viewer", "", "a catBREAKa dog, 日本語, ✨", "x" * 600]
    for prompt, text in zip(PROMPTS, expected):
        (chunk,) = engine.tokenize_line(prompt)
        assert recover_text(chunk.qwen_tokens, engine.qwen_tokenizer) == text
        if text:  # the project's bundled Qwen3 tokenizer agrees with Forge's
            assert ours.encode(text) == engine.qwen_tokenizer([text], add_special_tokens=False)["input_ids"][0]
    (chunk,) = engine.tokenize_line("")
    assert chunk.qwen_tokens == [151643]  # Forge's pad for an empty prompt


def test_armed_hook_returns_qwen35_states_on_the_stock_device_and_dtype(engine, tmp_path):
    from lib_qwen35 import load_encoder
    from lib_qwen35.forge import active_state, hook
    from lib_qwen35.forge.encoder_holder import EncoderHolder, file_identity
    from lib_qwen35.forge.placement import Placement
    from lib_qwen35.forge.replacement import EncodeRun, make_handler

    path = synthetic_checkpoint()
    run = EncodeRun(weights_path=path, weights_identity=file_identity(path), weights_hash="0" * 10, alignment_path=None,
                    alignment_strength=1.0, calibration_path=None, output_scale=1.0,
                    placement=Placement(torch.device("cpu"), torch.float32, keep_resident=False))
    stock_conds = engine(PROMPTS[:2])
    hook.install(engine)
    active_state.arm(make_handler(run, EncoderHolder()))
    try:
        encoder = load_encoder(path)
        for prompt, text in [(PROMPTS[0], "1girl, masterpiece, blurry, looking at viewer"), ("", "")]:
            (chunk,) = engine.tokenize_line(prompt)
            z = engine.process_tokens([chunk.qwen_tokens], [chunk.qwen_multipliers])
            stock = _stock(engine, chunk.qwen_tokens)
            assert (z.device, z.dtype) == (stock.device, stock.dtype) == (torch.device("cpu"), torch.float16)
            want = encoder.encode_ids(encoder.tokenize(text))
            assert z.shape == (1, want.shape[0], 1024)
            assert torch.equal(z[0], want.to(torch.float16))
        conds = engine(PROMPTS[:2])
        for cond, stock_cond in zip(conds, stock_conds):
            assert cond.shape == stock_cond.shape == (1, 512, 1024) and cond.dtype == stock_cond.dtype
            assert torch.isfinite(cond).all() and not torch.equal(cond, stock_cond)
    finally:
        active_state.disarm()
        hook.restore(engine)
    assert torch.equal(engine(PROMPTS[:1])[0], stock_conds[0])  # restored: stock again


# ---- the rest of the Forge API we touch, checked in the checkout's source ---------------------------------


def _tree(relative):
    with open(os.path.join(FORGE_DIR, relative), encoding="utf-8") as f:
        return ast.parse(f.read())


def _functions(tree):
    return {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _classes(tree):
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}


def _arg_names(fn):
    a = fn.args
    return [x.arg for x in a.posonlyargs + a.args] + ([a.vararg.arg] if a.vararg else []) + [x.arg for x in a.kwonlyargs]


def _class_assigns(cls):
    return {t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def test_host_api_the_adapter_uses_exists_in_the_checkout():
    scripts = _tree("modules/scripts.py")
    script_cls = _classes(scripts)["Script"]
    methods = {n.name: n for n in script_cls.body if isinstance(n, ast.FunctionDef)}
    for name in ("title", "show", "ui", "process", "process_batch", "postprocess", "on_after_component", "elem_id"):
        assert name in methods, name
    assert "scripts_data" in {t.id for n in scripts.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert "script_class" in ast.unparse(scripts) and "ScriptClassData" in ast.unparse(scripts)

    processing = _classes(_tree("modules/processing.py"))
    assert {"cached_c", "cached_uc"} <= _class_assigns(processing["StableDiffusionProcessing"])
    assert {"cached_hr_c", "cached_hr_uc"} <= _class_assigns(processing["StableDiffusionProcessingTxt2Img"])

    xyz = _tree("scripts/xyz_grid.py")
    axis = _classes(xyz)["AxisOption"]
    init = next(n for n in axis.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert _arg_names(init)[:4] == ["self", "label", "type", "apply"] and "choices" in _arg_names(init)
    assert "axis_options" in {t.id for n in xyz.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}

    paste = next(n for n in _classes(_tree("modules/infotext_utils.py"))["PasteField"].body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    assert _arg_names(paste) == ["cls", "component", "target", "api"]
    assert "InputAccordion" in _functions(_tree("modules/ui_components.py"))
    assert "ToolButton" in _classes(_tree("modules/ui_components.py"))

    option_init = next(n for n in _classes(_tree("modules/options.py"))["OptionInfo"].body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert _arg_names(option_init)[:5] == ["self", "default", "label", "component", "component_args"] and "section" in _arg_names(option_init)

    callbacks = _functions(_tree("modules/script_callbacks.py"))
    for name in ("on_ui_settings", "on_before_ui", "on_model_loaded", "on_script_unloaded", "on_ui_tabs"):
        assert name in callbacks, name
    # the alignment tab: Forge's generation lock, and how Anima loads its stock text encoder
    assert "queue_lock" in ast.unparse(_tree("modules/call_queue.py"))
    anima_engine = ast.unparse(_tree("backend/diffusion_engine/anima.py"))
    assert "load_model_gpu(self.forge_objects.clip.patcher)" in anima_engine

    memory = _functions(_tree("backend/memory_management.py"))
    for name in ("text_encoder_device", "get_torch_device", "free_memory", "soft_empty_cache", "cpu_mode", "text_encoder_dtype",
                 "load_model_gpu"):
        assert name in memory, name
    assert _arg_names(memory["free_memory"])[:2] == ["memory_required", "device"]

    launch = _functions(_tree("modules/launch_utils.py"))
    assert "is_installed" in launch and _arg_names(launch["run_pip"])[:2] == ["command", "desc"]
    api = ast.unparse(_tree("modules/api/api.py"))
    assert "alwayson_scripts" in api and "script.title().lower()" in api
    paths = ast.unparse(_tree("modules/paths_internal.py"))
    assert "models_path" in paths
