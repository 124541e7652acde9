"""A booted stand-in SD.Next for tests: stubs on sys.path, a temporary models folder, the built-in
xyz_grid script and our scripts loaded as SD.Next loads scripts, txt2img/img2img script runners with their
UI built, and an Anima pipeline (AnimaTextToImagePipeline stand-in holding the real Qwen3 tokenizer)
loaded the way pipelines/model_anima.py does (prompt-encode hijack, then model_loaded callbacks).

    with sdnext_world(tmp_path) as world:
        processed = world.txt2img("1girl", "lowres", enabled=True)
"""

from __future__ import annotations

import contextlib
import os
import sys

from repo import ROOT
from stubs.sites import reset_shared_state

from . import SITE, installed

REPO_ROOT = str(ROOT)
OUR_SCRIPT = os.path.join(REPO_ROOT, "scripts", "qwen35_anima.py")
TAB_SCRIPT = os.path.join(REPO_ROOT, "scripts", "qwen35_alignment_tab.py")
XYZ_SCRIPT = os.path.join(SITE, "builtin_scripts", "xyz_grid.py")
TITLE = "Qwen3.5-4B text encoder (Anima)"


def reset_adapter_state(encoder_loader=None):
    """Forget everything lib_qwen35.host keeps at module level (it outlives stub purges)."""
    from lib_qwen35.host.sdnext import conditioning_cache, seam, stop

    stop.disarm()
    seam.restore_all()
    stop.restore_all()
    conditioning_cache.restore()
    conditioning_cache.reset()
    return reset_shared_state(encoder_loader)


def load_anima(name="tiny-anima", text_encoder=None):
    """pipelines/model_anima.load_anima: the pipeline from its components, the img2img class registered for
    the task switch, the prompt-encode hijack."""
    from modules import sd_hijack_te, sd_models
    from pipelines.anima.anima_image import build_anima_pipeline_classes
    from pipelines.anima.modeling_llm_adapter import AnimaLLMAdapter
    from pipelines.anima.pipeline import AnimaTextToImagePipeline

    from .fakes import Qwen2TokenizerStandIn, Qwen3ModelStandIn, T5TokenizerStandIn

    img2img, inpaint = build_anima_pipeline_classes(AnimaTextToImagePipeline)
    sd_models.TASK_CLASSES.update({sd_models.DiffusersTaskType.TEXT_2_IMAGE: AnimaTextToImagePipeline,
                                   sd_models.DiffusersTaskType.IMAGE_2_IMAGE: img2img,
                                   sd_models.DiffusersTaskType.INPAINTING: inpaint})
    pipe = AnimaTextToImagePipeline(text_encoder=text_encoder or Qwen3ModelStandIn(), tokenizer=Qwen2TokenizerStandIn(),
                                    t5_tokenizer=T5TokenizerStandIn(), llm_adapter=AnimaLLMAdapter())
    pipe.sd_checkpoint_info = type("CheckpointInfo", (), {"name": name, "title": name, "filename": f"/models/Diffusers/{name}"})()
    sd_hijack_te.init_hijack(pipe)
    return pipe


class OtherPipeline:
    """A non-Anima diffusers pipeline (e.g. SDXL): an encode_prompt, no LLM adapter."""

    def __init__(self):
        import torch

        self.text_encoder = torch.nn.Linear(4, 4)
        self.sd_checkpoint_info = type("CheckpointInfo", (), {"name": "sdxl-base", "title": "sdxl-base", "filename": "/models/sdxl.safetensors"})()

    def encode_prompt(self, prompt, negative_prompt=None, **kwargs):
        import torch

        n = len(prompt) if isinstance(prompt, list) else 1
        return torch.full((n, 77, 8), float(len(str(prompt)))), torch.full((n, 77, 8), float(len(str(negative_prompt))))

    def __call__(self, prompt=None, negative_prompt=None, **kwargs):
        embeds, negative = self.encode_prompt(prompt, negative_prompt)
        return type("Output", (), {"images": (embeds[:, :1, :4] - negative[:, :1, :4]).unsqueeze(1)})()


class SDNextWorld:
    def __init__(self, models_dir, encoder_loader=None, load_tab=False):
        from modules import devices, errors, paths, script_callbacks, scripts_manager, sd_hijack_te, sd_offload, shared

        self.models_dir = models_dir
        paths.models_path = models_dir
        shared.models_path = models_dir
        shared.opts.data = {k: v for k, v in shared.opts.data.items() if not k.startswith("qwen35_te_")}
        shared.opts.data.update(te_dir=os.path.join(models_dir, "Text-encoder"), diffusers_offload_mode="none")
        devices.device, devices.dtype = devices.cpu, __import__("torch").float32
        devices.gc_calls.clear()
        sd_offload.calls.clear()
        sd_offload.offload_hook_instance = None
        errors.displayed.clear()
        sd_hijack_te.prompt_cache.cache.clear()
        sd_hijack_te.encodes.clear()
        self.controller = reset_adapter_state(encoder_loader)

        self.anima = load_anima()
        shared.sd_model = self.anima
        scripts = [XYZ_SCRIPT, OUR_SCRIPT] + ([TAB_SCRIPT] if load_tab else [])
        scripts_manager.load_scripts(scripts)   # built-in scripts first, then extensions
        self.xyz = next(d.module for d in scripts_manager.scripts_data if d.module.__name__ == "xyz_grid.py")
        script_callbacks.ui_settings_callback()
        script_callbacks.before_ui_callback()
        self.runners = {}
        for tab, is_img2img in (("txt2img", False), ("img2img", True)):
            runner = scripts_manager.ScriptRunner(tab)
            runner.initialize_scripts(is_img2img)
            runner.setup_ui(parent=tab)
            self.runners[tab] = runner
        script_callbacks.model_loaded_callback(self.anima)   # sd_models.load_diffuser: after the load
        self.script = self.our_script("txt2img")

    def our_script(self, tab):
        return next(s for s in self.runners[tab].alwayson_scripts if type(s).__module__ == "qwen35_anima.py")

    # ---- generation ----------------------------------------------------------------------------

    def default_args(self, tab="txt2img"):
        """script_args as the UI sends them: position 0 (no selectable script) plus every control's value."""
        return [0] + [c.value for c in self.runners[tab].inputs[1:]]

    def script_args(self, tab="txt2img", **ours):
        from lib_qwen35.host.params import ARG_NAMES

        args = self.default_args(tab)
        script = self.our_script(tab)
        for i, name in enumerate(ARG_NAMES):
            if name in ours:
                args[script.args_from + i] = ours[name]
        return args

    def make_p(self, prompt="1girl, masterpiece", negative="lowres", tab="txt2img", **ours):
        from modules import processing

        cls = processing.StableDiffusionProcessingTxt2Img if tab == "txt2img" else processing.StableDiffusionProcessingImg2Img
        options = {k: ours.pop(k) for k in ("cfg_scale", "steps", "enable_hr", "batch_size", "n_iter", "init_images",
                                            "refiner_prompt", "refiner_negative", "seed", "denoising_strength") if k in ours}
        return cls(prompt=prompt, negative_prompt=negative, scripts=self.runners[tab], script_args=self.script_args(tab, **ours), **options)

    def txt2img(self, prompt="1girl, masterpiece", negative="lowres", **ours):
        from modules import processing

        return processing.process_images(self.make_p(prompt, negative, "txt2img", **ours))

    def img2img(self, prompt="1girl, masterpiece", negative="lowres", init=None, **ours):
        import torch

        from modules import processing

        init = init if init is not None else torch.linspace(-1, 1, 16).view(1, 4, 2, 2)
        return processing.process_images(self.make_p(prompt, negative, "img2img", init_images=[init], **ours))

    def api_txt2img(self, prompt="1girl, masterpiece", negative="lowres", alwayson=None, **options):
        """POST /sdapi/v1/txt2img: script_args from the UI defaults, per_script_args from the request."""
        from modules import processing
        from modules.api import script

        runner = self.runners["txt2img"]
        p = processing.StableDiffusionProcessingTxt2Img(prompt=prompt, negative_prompt=negative, scripts=runner, **options)
        p.script_args = script.init_script_args(p, alwayson, self.default_args(), runner)
        return processing.process_images(p)

    def build_html_info(self, tab="txt2img"):
        """ui_common.create_output_panel: the raw-infotext component, created after the scripts' UI."""
        import gradio as gr

        component = gr.HTML(elem_id=f"html_info_{tab}", visible=False)
        self.runners[tab].after_component(component, elem_id=f"html_info_{tab}", visible=False)
        return component


@contextlib.contextmanager
def sdnext_world(tmp_path, encoder_loader=None, load_tab=False):
    models_dir = os.path.join(str(tmp_path), "models")
    for folder in ("qwen35", "Text-encoder"):
        os.makedirs(os.path.join(models_dir, folder), exist_ok=True)
    with installed():
        try:
            yield SDNextWorld(models_dir, encoder_loader, load_tab)
        finally:
            reset_adapter_state()
            for name in ("qwen35_anima.py", "qwen35_alignment_tab.py", "xyz_grid.py"):
                sys.modules.pop(name, None)
