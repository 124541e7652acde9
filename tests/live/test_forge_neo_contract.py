"""Integration with a real Forge Neo checkout (skipped unless FORGE_NEO_DIR points to one).

    FORGE_NEO_DIR=/path/to/sd-webui-forge-neo/webui python -m pytest tests/live/test_forge_neo_contract.py

It reads which generation of Anima's text engine the checkout has (legacy AnimaTextProcessingEngine, or
the rewritten Qwen06Engine on `_comfy.py`) and fails loudly when it is neither: the seam moved. It imports
Forge's real `backend/text_processing/anima_engine.py` (and `_comfy.py`) and real prompt parser, builds
the engine with Forge's bundled Anima tokenizers (transformers, as Forge's loader does) and a stand-in
Qwen3-0.6B + LLM adapter, installs our seam patch and checks ids, shapes, devices, dtypes, the mask, the empty
prompt and the bit-identical stock path; for the rewritten engine it also holds the test stand-in
(tests/stubs/forge_neo/site/backend/text_processing/_comfy.py) against the real file. Modules that need Forge's heavy dependencies (gradio, psutil, rich,
comfy_kitchen, lark) are replaced by minimal stand-ins only when they cannot be imported. The Forge APIs
the extension calls elsewhere (scripts, processing caches, xyz_grid, infotext, options, callbacks,
memory management, launch) are checked against the checkout's source with `ast`, without importing it.

One module of some 450 lines on purpose: every check reads the one checkout FORGE_NEO_DIR names, and all of
them are what to run first when Forge changes.
"""

import ast
import inspect
import os
import sys
import types

import pytest
import torch

from stubs.forge_neo.fakes import StubQwen3TextEncoder
from stubs.forge_neo.harness import synthetic_checkpoint

FORGE_DIR = os.environ.get("FORGE_NEO_DIR", "")
if FORGE_DIR and os.path.isdir(os.path.join(FORGE_DIR, "webui", "backend")):
    FORGE_DIR = os.path.join(FORGE_DIR, "webui")  # the repository root was given

pytestmark = pytest.mark.skipif(not (FORGE_DIR and os.path.isfile(os.path.join(FORGE_DIR, "backend", "text_processing", "anima_engine.py"))),
                                reason="set FORGE_NEO_DIR to a Forge Neo checkout (its webui/ folder)")

ANIMA_HF = os.path.join(FORGE_DIR, "backend", "huggingface", "circlestone-labs", "Anima")
PROMPTS = ["1girl, (masterpiece:1.2), [blurry], looking at viewer", "", "a cat BREAK a dog, 日本語, ✨", "x" * 600,
           "((deep)) \\(literal\\) [a:b:0.5]"]
RECOVERED = {  # the text our encoder receives for PROMPTS, per engine generation (README: prompt syntax)
    "legacy": ["1girl, masterpiece, blurry, looking at viewer", "", "a catBREAKa dog, 日本語, ✨", "x" * 600, "deep (literal) a:b:0.5"],
    "qwen06": ["1girl, masterpiece, [blurry], looking at viewer", "", "a cat BREAK a dog, 日本語, ✨", "x" * 600, "deep (literal) [a:b:0.5]"],
}


def _tree_generation():
    """"legacy" / "qwen06" from the checkout's anima_engine.py classes, or None (a seam we do not know)."""
    path = os.path.join(FORGE_DIR, "backend", "text_processing", "anima_engine.py")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        classes = {n.name for n in ast.walk(ast.parse(f.read())) if isinstance(n, ast.ClassDef)}
    if "AnimaTextProcessingEngine" in classes:
        return "legacy"
    if "Qwen06Engine" in classes and os.path.isfile(os.path.join(FORGE_DIR, "backend", "text_processing", "_comfy.py")):
        return "qwen06"
    return None


TREE = _tree_generation() if FORGE_DIR else None
legacy_only = pytest.mark.skipif(TREE != "legacy", reason=f"this checkout has the {TREE} engine")
qwen06_only = pytest.mark.skipif(TREE != "qwen06", reason=f"this checkout has the {TREE} engine")


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _try_import(name):
    try:
        __import__(name)
        return sys.modules[name]
    except Exception:  # noqa: BLE001 - any import failure means the module is absent in this Forge
        sys.modules.pop(name, None)
        return None


@pytest.fixture(scope="module")
def forge():
    """Real Forge backend modules on sys.path, with light stand-ins where a dependency is missing."""
    from stubs.forge_neo import purge

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
            get_torch_device=lambda: torch.device("cpu"), cpu_mode=lambda: True, free_memory=lambda *a, **k: [], soft_empty_cache=lambda force=False: None,
            intermediate_device=lambda: torch.device("cpu"))
    if _try_import("backend.args") is None:
        replaced.append("backend.args")
        sys.modules["backend.args"] = _module("backend.args", dynamic_args=types.SimpleNamespace(last_extra_generation_params={}), args=types.SimpleNamespace())
    if _try_import("backend.text_processing.emphasis") is None:  # imports modules.prompt_parser (lark)
        replaced.append("backend.text_processing.emphasis")

        class Original:
            name = "Original"

        sys.modules["backend.text_processing.emphasis"] = _module(
            "backend.text_processing.emphasis", get_current_option=lambda name: Original, uses_emphasis=lambda text: "(" in text or "[" in text)
    anima_engine = __import__("backend.text_processing.anima_engine", fromlist=["anima_engine"])
    sys.argv = saved_argv
    assert anima_engine.__file__.startswith(FORGE_DIR), anima_engine.__file__  # the real one
    try:
        yield types.SimpleNamespace(anima_engine=anima_engine, replaced=replaced)
    finally:
        from lib_qwen35.host import active_state
        from lib_qwen35.host.forge_neo import seam

        active_state.disarm()
        seam.restore_all()
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
    cls = forge.anima_engine.AnimaTextProcessingEngine if TREE == "legacy" else forge.anima_engine.Qwen06Engine
    return cls(text_encoder=text_encoder, qwen_tokenizer=tokenizers[0], t5_tokenizer=tokenizers[1])


def _stock(engine, tokens):
    return type(engine).process_tokens(engine, [tokens], [[1.0] * len(tokens)])


def _anima_source():
    with open(os.path.join(FORGE_DIR, "backend", "diffusion_engine", "anima.py"), encoding="utf-8") as f:
        return f.read()


def test_the_checkout_has_an_engine_generation_we_support():
    """Fails (never skips) when Forge moved the seam: update lib_qwen35/host/forge_neo/engines/ for it."""
    assert TREE is not None, (f"{FORGE_DIR}: backend/text_processing/anima_engine.py has neither AnimaTextProcessingEngine "
                              "nor Qwen06Engine (+ _comfy.py): Forge Neo's Anima text engine changed; add an engine adapter")
    from lib_qwen35.host.forge_neo import detection

    source = _anima_source()
    engine_class = "AnimaTextProcessingEngine" if TREE == "legacy" else "Qwen06Engine"
    homes = [a for a in detection.KNOWN_ENGINE_ATTRS if f"self.{a} = {engine_class}(" in source]
    assert homes, f"anima.py no longer puts {engine_class} on one of {detection.KNOWN_ENGINE_ATTRS}"
    assert f"return self.{homes[0]}(prompt)" in source  # get_learned_conditioning calls the engine
    print(f"real Forge at {FORGE_DIR}: engine generation {TREE} on sd_model.{homes[0]}")


@legacy_only
def test_seam_signatures_are_what_the_hook_expects(forge):
    print(f"real Forge at {FORGE_DIR}; stand-ins used for: {forge.replaced or 'nothing'}")
    cls = forge.anima_engine.AnimaTextProcessingEngine
    assert list(inspect.signature(cls.process_tokens).parameters) == ["self", "batch_tokens", "batch_multipliers"]
    assert list(inspect.signature(cls.__init__).parameters) == ["self", "text_encoder", "qwen_tokenizer", "t5_tokenizer"]


@legacy_only
def test_disarmed_hook_is_bit_identical_on_the_real_engine(engine):
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam

    stock = [engine([p])[0] for p in PROMPTS]
    assert seam.install(engine)
    assert not active_state.is_armed()
    for prompt, reference in zip(PROMPTS, stock):
        cond = engine([prompt])[0]
        assert cond.shape == (1, max(512, reference.shape[1]), 1024) and torch.equal(cond, reference)
    seam.restore(engine)
    assert "process_tokens" not in vars(engine)


@legacy_only
def test_text_recovered_from_forges_qwen3_ids(engine):
    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
    from lib_qwen35.host.forge_neo.text_recovery import recover_text

    ours = load_qwen3_tokenizer()
    for prompt, text in zip(PROMPTS, RECOVERED["legacy"]):
        (chunk,) = engine.tokenize_line(prompt)
        assert recover_text(chunk.qwen_tokens, engine.qwen_tokenizer) == text
        if text:  # the project's bundled Qwen3 tokenizer agrees with Forge's
            assert ours.encode(text) == engine.qwen_tokenizer([text], add_special_tokens=False)["input_ids"][0]
    (chunk,) = engine.tokenize_line("")
    assert chunk.qwen_tokens == [151643]  # Forge's pad for an empty prompt


def _arm_synthetic():
    from lib_qwen35.host import active_state
    from lib_qwen35.host.encoder_holder import EncoderHolder, file_identity
    from lib_qwen35.host.placement import Placement
    from lib_qwen35.host.replacement import EncodeRun, make_encode

    path = synthetic_checkpoint()
    run = EncodeRun(weights_path=path, weights_identity=file_identity(path), weights_hash="0" * 10, alignment_path=None,
                    alignment_strength=1.0, calibration_path=None, output_scale=1.0,
                    placement=Placement(torch.device("cpu"), torch.float32, keep_resident=False))
    active_state.arm(make_encode(run, EncoderHolder()))
    return path


@legacy_only
def test_armed_hook_returns_qwen35_states_on_the_stock_device_and_dtype(engine, tmp_path):
    from lib_qwen35 import load_encoder
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam

    stock_conds = engine(PROMPTS[:2])
    seam.install(engine)
    path = _arm_synthetic()
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
        seam.restore(engine)
    assert torch.equal(engine(PROMPTS[:1])[0], stock_conds[0])  # restored: stock again


# ---- the rewritten engine: Qwen06Engine on _comfy.py's SDTokenizer / SDClipModel ---------------------------


def _pairs(engine, prompt):
    """What Qwen06Engine.__call__ hands encode_token_weights for one line (emphasis "Original")."""
    return [[(t, 1.0) for t, *_ in section] for section in engine.qwen_tokenizer.tokenize_with_weights(prompt, disable_weights=False)]


@qwen06_only
def test_qwen06_seam_is_what_the_adapter_expects(forge, engine):
    from lib_qwen35.host.forge_neo import detection, engines

    comfy = sys.modules["backend.text_processing._comfy"]
    assert list(inspect.signature(comfy.SDClipModel.encode_token_weights).parameters) == ["self", "token_weight_pairs"]
    assert list(inspect.signature(type(engine).__init__).parameters) == ["self", "text_encoder", "qwen_tokenizer", "t5_tokenizer"]
    assert isinstance(engine.text_encoder, comfy.SDClipModel) and isinstance(engine.qwen_tokenizer, comfy.SDTokenizer)
    call = inspect.getsource(type(engine).__call__)
    assert "self.text_encoder.encode_token_weights(qwen_chunk)[0]" in call   # the states we replace
    assert "(x[0], 1.0)" in call                                              # Qwen weights forced to 1.0
    assert "self.text_encoder.transformer.preprocess_text_embeds" in inspect.getsource(type(engine))  # the LLM adapter
    assert "cache[line]" in call  # per-line cache: local to one call (checked behaviourally below)
    assert engines.generation_of(engine).name == "qwen06" and engines.has_llm_adapter(engine)

    class Anima:  # what backend.diffusion_engine.anima.Anima holds, at the checkout's attribute
        pass

    model = Anima()
    attribute = next(a for a in detection.KNOWN_ENGINE_ATTRS if f"self.{a} = Qwen06Engine(" in _anima_source())
    setattr(model, attribute, engine)
    located = detection.locate(model)
    assert (located.kind, located.attribute, located.generation.name) == ("anima", attribute, "qwen06")


@qwen06_only
def test_qwen06_ids_mask_and_empty_prompt_on_the_real_engine(engine):
    from lib_qwen35.files.tokenizer import load_qwen3_tokenizer
    from lib_qwen35.host.forge_neo.text_recovery import recover_text

    ours = load_qwen3_tokenizer()
    hf = engine.qwen_tokenizer.tokenizer
    for prompt, text in zip(PROMPTS, RECOVERED["qwen06"]):
        (section,) = _pairs(engine, prompt)
        ids = [t for t, _ in section]
        assert recover_text(ids, hf) == text
        if text:
            assert ours.encode(text) == hf([text], add_special_tokens=False)["input_ids"][0]
        z, pooled, extra = type(engine.text_encoder).encode_token_weights(engine.text_encoder, [section])
        assert z.shape == (1, len(ids), 1024) and z.dtype == torch.float32 and pooled is None
        assert extra["attention_mask"].dtype == torch.int64 and extra["attention_mask"].shape == (1, len(ids))
        assert extra["attention_mask"].tolist() == [[1] * len(ids)] if text else [[0]]
    assert _pairs(engine, "") == [[(151643, 1.0)]]  # Forge's empty prompt


@qwen06_only
def test_qwen06_disarmed_hook_is_bit_identical_and_armed_hook_feeds_qwen35(engine):
    from lib_qwen35 import load_encoder
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam

    stock = [engine([p])[0] for p in PROMPTS]
    assert seam.install(engine)
    assert "encode_token_weights" in vars(engine.text_encoder) and not active_state.is_armed()
    for prompt, reference in zip(PROMPTS, stock):
        assert torch.equal(engine([prompt])[0], reference)
    path = _arm_synthetic()
    try:
        encoder = load_encoder(path)
        for prompt, text in zip(PROMPTS[:3], RECOVERED["qwen06"]):
            z, pooled, extra = engine.text_encoder.encode_token_weights(_pairs(engine, prompt))
            want = encoder.encode_ids(encoder.tokenize(text))
            assert z.shape == (1, want.shape[0], 1024) and z.dtype == torch.float32 and pooled is None
            assert torch.equal(z[0], want.float())
            assert extra["attention_mask"].tolist() == [[1 if text else 0] * want.shape[0]]
        conds = engine(PROMPTS[:2] * 2)  # the engine's per-line cache inside one call
        assert torch.equal(conds[0], conds[2])
        for cond, reference in zip(conds, stock[:2] * 2):
            assert cond.shape == reference.shape == (1, 512, 1024) and cond.dtype == reference.dtype
            assert torch.isfinite(cond).all() and not torch.equal(cond, reference)
    finally:
        active_state.disarm()
    assert torch.equal(engine(PROMPTS[:1])[0], stock[0])  # disarmed: stock again, nothing cached from us
    assert seam.restore(engine) and "encode_token_weights" not in vars(engine.text_encoder)


@qwen06_only
def test_the_test_stand_in_matches_the_real_comfy_port(engine, tokenizers):
    """tests/stubs/forge_neo' _comfy.py must give the same ids, weights, states and masks as the real file."""
    import importlib.util

    from stubs.forge_neo import SITE

    spec = importlib.util.spec_from_file_location("forge_stub_comfy", os.path.join(SITE, "backend", "text_processing", "_comfy.py"))
    stub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stub)
    real_te = engine.text_encoder
    stub_te = stub.SDClipModel(real_te.transformer, layer="last", layer_idx=None, special_tokens={"pad": 151643}, layer_norm_hidden_state=False,
                               enable_attention_masks=True, return_attention_masks=True)
    stub_qwen = stub.SDTokenizer(tokenizers[0], pad_with_end=False, has_start_token=False, has_end_token=False, pad_to_max_length=False,
                                 max_length=stub.INF, min_length=1, pad_token=151643)
    stub_t5 = stub.SDTokenizer(tokenizers[1], pad_with_end=False, has_start_token=False, pad_to_max_length=False, max_length=stub.INF, min_length=1)
    prompts = PROMPTS + ["((deep)) \\(literal\\) (a:0.5) (unclosed", "(x:notanumber)"]
    for prompt in prompts:
        for no_weights in (False, True):
            assert stub_qwen.tokenize_with_weights(prompt, disable_weights=no_weights) == engine.qwen_tokenizer.tokenize_with_weights(prompt, disable_weights=no_weights)
            assert stub_t5.tokenize_with_weights(prompt, disable_weights=no_weights) == engine.t5_tokenizer.tokenize_with_weights(prompt, disable_weights=no_weights)
    # sections of one call are equally long (the real forward stacks them); masks: leading pads, pad after text
    batch = [[(t, 1.0) for t in ids] for ids in ([151643] * 3, [16, 17, 18], [16, 151643, 151643], [151643, 16, 17])]
    for sections in ([[(151643, 1.0)]], [batch[0]], [batch[1]], batch[1:3], batch):
        real, ours = type(real_te).encode_token_weights(real_te, sections), stub_te.encode_token_weights(sections)
        assert len(real) == len(ours) == 3 and real[1] is ours[1] is None
        assert torch.equal(real[0], ours[0]) and torch.equal(real[2]["attention_mask"], ours[2]["attention_mask"])


@qwen06_only
def test_qwen06_stock_encoder_for_the_fit_uses_the_class_seam(engine):
    from lib_qwen35.host import active_state
    from lib_qwen35.host.forge_neo import seam
    from lib_qwen35.host.forge_neo.stock_encoder import ForgeStockEncoder

    seam.install(engine)
    active_state.arm(lambda texts: [torch.full((2, 1024), 7.0) for _ in texts])
    try:
        wrapper = ForgeStockEncoder(engine, identity="test")
        ids = [wrapper.tokenize(p) for p in PROMPTS[:3]]
        outs = wrapper.encode_batch(ids)
    finally:
        active_state.disarm()
        seam.restore(engine)
    assert ids[1] == [151643] and wrapper.generation_text(PROMPTS[0]) == RECOVERED["qwen06"][0]
    for i, out in zip(ids, outs):
        alone = type(engine.text_encoder).encode_token_weights(engine.text_encoder, [[(t, 1.0) for t in i]])[0][0]
        assert out.shape == (len(i), 1024) and torch.allclose(out, alone, atol=1e-6)   # batching changes nothing


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
    assert "def get_learned_conditioning(self" in anima_engine  # forge_neo/stop.py shadows it on the instance

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
