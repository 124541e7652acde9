"""The SD.Next this extension was written for, checked against a real tree (skipped unless SDNEXT_DIR points
to one; fails loudly when a seam or an API we rely on moved).

    SDNEXT_DIR=~/.cache/sdnext_e2e/src python -m pytest tests/live/test_sdnext_contract.py

Two parts:
- the source, read with `ast` (nothing imported): the Anima pipeline's `_encode_prompt` (the seam), the
  prompt-encode hijack and its cache, how Script hooks and the pipeline call handle exceptions, the
  callbacks, the API's args, paste, xyz_grid's AxisOption, devices, offload, settings, the version dict;
  and the stand-ins in tests/stubs/sdnext, statement for statement where it matters;
- the code, run (needs SD.Next's Python: SDNEXT_PYTHON, default <SDNEXT_DIR>/../venv/bin/python, and a
  diffusers-format Anima: SDNEXT_MODEL, default the ../shared/sdnext_e2e harness's tiny-anima):
  tests/live/sdnext/real_pipeline.py builds SD.Next's real AnimaTextToImagePipeline and checks our patch on it.
"""

import ast
import json
import os
import subprocess

import pytest

from repo import ROOT

REPO_ROOT = str(ROOT)
SDNEXT_DIR = os.path.expanduser(os.environ.get("SDNEXT_DIR", ""))
PYTHON = os.environ.get("SDNEXT_PYTHON") or os.path.join(os.path.dirname(os.path.abspath(SDNEXT_DIR or ".")), "venv", "bin", "python")
MODEL = os.environ.get("SDNEXT_MODEL") or os.path.join(os.path.dirname(os.path.abspath(SDNEXT_DIR or ".")), "models", "Diffusers", "tiny-anima")
STUBS = os.path.join(REPO_ROOT, "tests", "stubs", "sdnext", "site")

pytestmark = pytest.mark.skipif(not (SDNEXT_DIR and os.path.isfile(os.path.join(SDNEXT_DIR, "pipelines", "anima", "pipeline.py"))),
                                reason="set SDNEXT_DIR to an SD.Next tree (the folder with launch.py and pipelines/)")


def tree(*parts, root=None):
    path = os.path.join(root or SDNEXT_DIR, *parts)
    assert os.path.isfile(path), f"SD.Next has no {os.path.join(*parts)} any more"
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read())


def cls(module, name):
    found = [n for n in ast.walk(module) if isinstance(n, ast.ClassDef) and n.name == name]
    assert found, f"class {name} is gone"
    return found[0]


def fn(owner, name):
    found = [n for n in owner.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert found, f"{getattr(owner, 'name', 'module')}.{name} is gone"
    return found[0]


def params(func):
    return [a.arg for a in func.args.args]


def calls(node):
    """Dotted names of everything called inside `node` ("self.text_encoder", "torch.zeros", ...)."""
    return [ast.unparse(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)]


def handlers(node):
    """The exception types each `except` inside `node` names ("Exception", "(ValueError, RuntimeError)"...)."""
    return [ast.unparse(h.type) if h.type is not None else "" for h in ast.walk(node) if isinstance(h, ast.ExceptHandler)]


def statements(func):
    """A function's body without its docstring and log lines, and `if`s left empty by that: the statements
    a stand-in must repeat."""
    def keep(stmt):
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return None
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and ast.unparse(stmt.value.func).startswith(("log.", "debug")):
            return None
        for field in ("body", "orelse"):
            if isinstance(getattr(stmt, field, None), list):
                setattr(stmt, field, [s for s in map(keep, getattr(stmt, field)) if s is not None])
        if isinstance(stmt, ast.If) and not stmt.body and not stmt.orelse:
            return None
        return stmt
    body = [s for s in map(keep, func.body) if s is not None]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


# ---- the seam ------------------------------------------------------------------------------------------

def test_the_anima_pipelines_encode_prompt_is_the_seam_we_patch():
    from lib_qwen35.host.sdnext.detection import COMPONENTS, SEAM, SEAM_PARAMS

    pipeline = cls(tree("pipelines", "anima", "pipeline.py"), "AnimaTextToImagePipeline")
    seam = fn(pipeline, SEAM)
    assert params(seam) == ["self"] + SEAM_PARAMS
    called = calls(seam)
    assert called.count("self.text_encoder") == 1, "the text encoder is no longer called exactly once per _encode_prompt"
    assert "last_hidden_state" in ast.unparse(seam)
    assert "self.llm_adapter" in called and "self.tokenizer" in called and "self.t5_tokenizer" in called
    adapter_call = next(n for n in ast.walk(seam) if isinstance(n, ast.Call) and ast.unparse(n.func) == "self.llm_adapter")
    assert {k.arg for k in adapter_call.keywords} == {"source_hidden_states", "target_input_ids"}, "the adapter got another input (a mask?)"
    empty_branch = next(n for n in ast.walk(seam) if isinstance(n, ast.If) and "all_empty" in ast.unparse(n.test))
    assert "torch.zeros(batch_size, 512" in ast.unparse(empty_branch.body)
    encode = fn(pipeline, "encode_prompt")
    assert calls(encode).count("self._encode_prompt") == 2   # prompts, then the negatives (CFG)
    assert "self.encode_prompt" in calls(fn(pipeline, "__call__"))
    init = fn(pipeline, "__init__")
    assert set(COMPONENTS) <= set(params(init))


def test_img2img_and_inpaint_subclass_the_txt2img_pipeline():
    builder = fn(tree("pipelines", "anima", "anima_image.py"), "build_anima_pipeline_classes")
    bases = [ast.unparse(b) for n in ast.walk(builder) if isinstance(n, ast.ClassDef) for b in n.bases]
    assert bases == ["base_cls", "AnimaImageToImagePipeline"], bases
    assert {"super().__call__", "base_cls.__call__"} & set(calls(builder)), "img2img no longer calls the base __call__"
    loader = tree("pipelines", "model_anima.py")
    assert "sd_hijack_te.init_hijack" in calls(loader) and "build_anima_pipeline_classes" in calls(loader)


def test_the_stand_in_pipeline_repeats_sdnexts_statements():
    real = cls(tree("pipelines", "anima", "pipeline.py"), "AnimaTextToImagePipeline")
    ours = cls(tree("pipelines", "anima", "pipeline.py", root=STUBS), "AnimaTextToImagePipeline")
    for name in ("_encode_prompt", "encode_prompt"):
        assert statements(fn(ours, name)) == statements(fn(real, name)), f"tests/stubs/sdnext: {name} no longer matches SD.Next's"
        assert ast.dump(fn(ours, name).args) == ast.dump(fn(real, name).args)


# ---- the prompt cache ------------------------------------------------------------------------------------

def test_the_prompt_cache_and_its_hijack():
    module = tree("modules", "sd_hijack_te.py")
    cache = cls(module, "PromptCache")
    assert params(fn(cache, "get")) == ["self", "prompt"] and params(fn(cache, "set")) == ["self", "prompt", "encoded"]
    assert "self.cache = {}" in ast.unparse(fn(cache, "__init__"))
    assert any(isinstance(n, ast.Assign) and ast.unparse(n) == "prompt_cache = PromptCache()" for n in module.body)
    hijack = fn(module, "hijack_encode_prompt")
    assert {"prompt_cache.get", "prompt_cache.set", "shared.sd_model.orig_encode_prompt"} <= set(calls(hijack))
    assert "Exception" in handlers(hijack), "the hijack no longer swallows encode errors (stop.py could be simpler)"
    init = fn(module, "init_hijack")
    assert "pipe.orig_encode_prompt = pipe.encode_prompt" in ast.unparse(init)
    ours = tree("modules", "sd_hijack_te.py", root=STUBS)
    for name in ("get", "set"):
        assert statements(fn(cls(ours, "PromptCache"), name)) == statements(fn(cache, name)), f"stand-in PromptCache.{name} differs"


def test_a_pipeline_switch_builds_a_new_object_and_hijacks_it_again():
    models = tree("modules", "sd_models.py")
    switch = fn(models, "set_diffuser_pipe")
    assert "diffusers.AutoPipelineForImage2Image.from_pipe" in calls(switch) and "restore_pipe_components" in calls(switch)
    assert "sd_hijack_te.init_hijack" in calls(fn(models, "restore_pipe_components"))
    assert "sd_models.set_diffuser_pipe" in calls(fn(tree("modules", "processing_diffusers.py"), "process_hires"))


# ---- exceptions: where SD.Next swallows them ---------------------------------------------------------------

def test_script_hooks_are_wrapped_and_get_the_api_args_exactly():
    manager = tree("modules", "scripts_manager.py")
    runner = cls(manager, "ScriptRunner")
    for hook in ("process", "process_batch", "postprocess"):
        method = fn(runner, hook)
        assert "Exception" in handlers(method), f"ScriptRunner.{hook} no longer catches exceptions"
        assert "p.per_script_args.get" in calls(method)
    assert "script.after_component" in calls(fn(runner, "after_component"))
    assert "AlwaysVisible" in {t.id for n in manager.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert any(isinstance(n, ast.ImportFrom) and n.module == "modules.scripts_manager" and n.names[0].name == "*" for n in tree("modules", "scripts.py").body)
    api = fn(tree("modules", "api", "script.py"), "init_script_args")
    assert "p.per_script_args[alwayson_script.title()] = request.alwayson_scripts[alwayson_script_name]['args']" in ast.unparse(api)


def test_the_pipeline_call_lets_our_errors_through():
    """process_base catches only these around the pipeline call; our errors are raised as something else."""
    from lib_qwen35.host.sdnext.stop import SWALLOWED

    base = fn(tree("modules", "processing_diffusers.py"), "process_base")
    caught = set(handlers(base))
    assert caught == {t.__name__ for t in SWALLOWED}, f"process_base now catches {caught}: update stop.SWALLOWED"
    assert "shared.sd_model" in calls(base)
    processing = tree("modules", "processing.py")
    images = fn(processing, "process_images")
    final = [n for n in ast.walk(images) if isinstance(n, ast.Try) and n.finalbody]
    assert any("script_callbacks.after_process_callback" in ast.unparse(t.finalbody) for t in final)
    inner = ast.unparse(fn(processing, "process_images_inner"))
    assert "p.scripts.postprocess(p, results)" in inner and "not (shared.state.interrupted or shared.state.skipped)" in inner
    callbacks = tree("modules", "script_callbacks.py")
    for name in ("on_ui_settings", "on_before_ui", "on_model_loaded", "on_script_unloaded", "on_after_process", "on_ui_tabs"):
        fn(callbacks, name)


# ---- UI, infotext, X/Y/Z ---------------------------------------------------------------------------------

def test_ui_pieces_that_differ_from_forge():
    assert not [n for n in ast.walk(tree("modules", "infotext_utils.py")) if isinstance(n, (ast.ClassDef, ast.FunctionDef))], \
        "modules.infotext_utils has code again (PasteField?): the SD.Next paste field could use it"
    accordion = cls(tree("modules", "ui_components.py"), "InputAccordion")
    assert "'visible': False" in ast.unparse(fn(accordion, "__init__"))   # its checkbox hidden: ours is a plain one
    xyz_on = ast.unparse(tree("scripts", "xyz_grid_on.py"))   # SD.Next's own always-on look: accordion + checkbox
    assert "gr.Accordion(" in xyz_on and "gr.Checkbox(label='Enabled'" in xyz_on
    cls(tree("modules", "ui_components.py"), "ToolButton")


def test_paste_applies_updates_before_its_conversion():
    paste = fn(tree("modules", "generation_parameters_copypaste.py"), "connect_paste")
    source = ast.unparse(paste)
    assert "if callable(key):" in source and "v = key(params)" in source
    update = source.index("isinstance(v, type_of_gr_update)")
    assert update < source.index("should_skip(key)") and update < source.index("valtype = type(output.value)")
    assert "infotext_fields" in ast.unparse(tree("modules", "ui_txt2img.py"))


def test_xyz_grids_axis_option_and_list():
    classes = tree("scripts", "xyz", "xyz_grid_classes.py")
    assert params(fn(cls(classes, "AxisOption"), "__init__")) == ["self", "label", "tipe", "apply", "fmt", "confirm", "cost", "choices"]
    grid = tree("scripts", "xyz_grid.py")
    imported = {a.name for n in grid.body if isinstance(n, ast.ImportFrom) and n.module == "scripts.xyz.xyz_grid_classes" for a in n.names}
    assert {"axis_options", "AxisOption"} <= imported
    assert "x_opt.apply(pc, x, xs)" in ast.unparse(grid)


# ---- devices, offload, files, version ----------------------------------------------------------------------

def test_devices_offload_files_and_version():
    devices = tree("modules", "devices.py")
    names = {t.id for n in devices.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert {"device", "dtype", "cpu"} <= names
    assert params(fn(devices, "torch_gc")) == ["force", "fast", "reason"]
    offload = tree("modules", "sd_offload.py")
    assert params(fn(offload, "apply_balanced_offload_to_module")) == ["module", "op", "force"]
    assert "offload_hook_instance" in ast.unparse(offload)
    definitions = ast.unparse(tree("modules", "ui_definitions.py"))
    assert "'te_dir': OptionInfo(os.path.join(paths.models_path, 'Text-encoder')" in definitions
    assert "'diffusers_offload_mode': OptionInfo(" in definitions
    assert "models_path = " in ast.unparse(tree("modules", "paths.py"))
    assert "queue_lock = threading.Lock()" in ast.unparse(tree("modules", "call_queue.py"))
    installer = tree("installer.py")
    version = next(n for n in installer.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "version")
    assert {"app", "updated", "commit", "branch"} <= {k.value for k in version.value.keys}
    shared = ast.unparse(tree("modules", "shared.py"))
    assert "OptionInfo" in shared and "opts = Options(" in shared


# ---- the real pipeline, run ----------------------------------------------------------------------------

@pytest.mark.skipif(not (os.path.isfile(PYTHON) and os.path.isfile(os.path.join(MODEL, "model_index.json"))),
                    reason="needs SD.Next's Python (SDNEXT_PYTHON) and a diffusers Anima (SDNEXT_MODEL): the ../shared/sdnext_e2e harness")
def test_our_patch_on_sdnexts_real_pipeline():
    proc = subprocess.run([PYTHON, os.path.join(REPO_ROOT, "tests", "live", "sdnext", "real_pipeline.py"), SDNEXT_DIR, MODEL, REPO_ROOT],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"stand_in_matches": True, "off_bit_identical": True, "armed_reaches_adapter": True,
                      "empty_prompts_stay_zeros": True, "stock_encoder_matches": True, "restored": 2}
