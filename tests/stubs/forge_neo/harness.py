"""A booted stand-in Forge for tests: stubs on sys.path, a temporary models folder, the built-in
xyz_grid script and our script loaded the way Forge loads scripts, txt2img/img2img script runners with
their UI built, and an Anima model whose text engine uses the real Qwen3 tokenizer, in any Forge Neo
engine generation ("legacy", "qwen06-anima", "qwen06"; see site/backend/diffusion_engine/anima.py).

    with forge_world(tmp_path, generation="qwen06") as world:
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
XYZ_SCRIPT = os.path.join(SITE, "builtin_scripts", "xyz_grid.py")


def reset_adapter_state(encoder_loader=None):
    """Forget everything lib_qwen35.host keeps at module level (it outlives stub purges)."""
    from lib_qwen35.host.forge_neo import conditioning_cache, seam, stop

    stop.disarm()
    seam.restore_all()
    conditioning_cache.reset()
    return reset_shared_state(encoder_loader)


class ForgeWorld:
    def __init__(self, models_dir, encoder_loader=None, generation="legacy"):
        from backend import memory_management
        from modules import paths, processing, script_callbacks, scripts, shared

        from .fakes import Qwen3TokenizerHF, StubQwen3TextEncoder, T5TokenizerStandIn

        self.models_dir = models_dir
        paths.models_path = models_dir
        shared.models_path = models_dir
        memory_management.calls.clear()
        memory_management.fake_gpu, memory_management.cpu_state_cpu = False, True
        memory_management.te_device = __import__("torch").device("cpu")
        shared.opts.data = {k: v for k, v in shared.opts.data.items() if not k.startswith("qwen35_te_")}
        processing.StableDiffusionProcessing.cached_c = [None, None, None]
        processing.StableDiffusionProcessing.cached_uc = [None, None, None]
        processing.StableDiffusionProcessingTxt2Img.cached_hr_c = [None, None]
        processing.StableDiffusionProcessingTxt2Img.cached_hr_uc = [None, None]
        processing.model_reload_hook = None
        self.controller = reset_adapter_state(encoder_loader)

        self.qwen_tokenizer, self.t5_tokenizer = Qwen3TokenizerHF(), T5TokenizerStandIn()
        self.text_encoder = StubQwen3TextEncoder()
        self.generation = generation
        self.anima = self.new_anima()
        shared.sd_model = self.anima

        script_callbacks.clear_callbacks()
        scripts.load_scripts([XYZ_SCRIPT, OUR_SCRIPT])  # built-in scripts first, then extensions
        self.xyz = next(d.module for d in scripts.scripts_data if d.module.__name__ == "xyz_grid.py")
        script_callbacks.ui_settings_callback()
        script_callbacks.before_ui_callback()
        self.runners = {}
        for tab, is_img2img in (("txt2img", False), ("img2img", True)):
            runner = scripts.ScriptRunner(is_img2img)
            runner.initialize_scripts()
            runner.setup_ui()
            self.runners[tab] = runner
        self.script = next(s for s in self.runners["txt2img"].alwayson_scripts if type(s).__module__ == "qwen35_anima.py")

    # ---- generation ----------------------------------------------------------------------------

    def script_args(self, tab="txt2img", **ours):
        """Full script_args: defaults from the UI, with our fields (by ARG_NAMES name) replaced."""
        from lib_qwen35.host.params import ARG_NAMES

        runner = self.runners[tab]
        args = runner.default_args()
        script = next(s for s in runner.alwayson_scripts if type(s).__module__ == "qwen35_anima.py")
        for i, name in enumerate(ARG_NAMES):
            if name in ours:
                args[script.args_from + i] = ours[name]
        return args

    def make_p(self, prompt="1girl, masterpiece", negative="lowres", tab="txt2img", script_args=None, **ours):
        from modules import processing

        cls = processing.StableDiffusionProcessingTxt2Img if tab == "txt2img" else processing.StableDiffusionProcessingImg2Img
        kwargs = {k: ours.pop(k) for k in ("cfg_scale", "steps", "enable_hr", "hr_prompt", "n_iter") if k in ours}
        args = script_args if script_args is not None else self.script_args(tab, **ours)
        return cls(prompt=prompt, negative_prompt=negative, scripts=self.runners[tab], script_args=args, **kwargs)

    def txt2img(self, prompt="1girl, masterpiece", negative="lowres", **ours):
        from modules import processing

        return processing.process_images(self.make_p(prompt, negative, "txt2img", **ours))

    def new_anima(self, name="anima_stub"):
        from backend.diffusion_engine.anima import Anima

        return Anima(self.text_encoder, self.qwen_tokenizer, self.t5_tokenizer, name=name, generation=self.generation)

    def engine(self, model=None):
        from modules import shared

        return (model or shared.sd_model).text_engine

    def seam_owner(self, engine=None):
        """The object whose method carries the Qwen3 states: the engine (legacy) or its SDClipModel."""
        engine = engine or self.engine()
        return engine if self.generation == "legacy" else engine.text_encoder

    def seam_name(self):
        return "process_tokens" if self.generation == "legacy" else "encode_token_weights"

    def qwen_ids(self, prompt):
        """The Qwen3 ids Forge's engine hands its seam for one prompt line (emphasis parsed as Forge does)."""
        engine = self.engine()
        if self.generation == "legacy":
            (chunk,) = engine.tokenize_line(prompt)
            return list(chunk.qwen_tokens)
        (section,) = engine.qwen_tokenizer.tokenize_with_weights(prompt)
        return [t for t, _ in section]

    def seam_states(self, prompt=None, ids=None, stock=False, engine=None):
        """What the seam returns for a prompt (or ids): [1, T, 1024] Qwen3 states. Through the instance
        (our hook when installed), or with stock=True through the class method."""
        engine = engine or self.engine()
        ids = list(ids) if ids is not None else self.qwen_ids(prompt)
        owner = self.seam_owner(engine)
        method = getattr(type(owner), self.seam_name()).__get__(owner) if stock else getattr(owner, self.seam_name())
        if self.generation == "legacy":
            return method([ids], [[1.0] * len(ids)])
        return method([[(t, 1.0) for t in ids]])[0]

    def seam_output(self, ids, stock=False):
        """The seam's whole return value (qwen06: the (z, pooled, extra) tuple)."""
        owner = self.seam_owner()
        method = getattr(type(owner), self.seam_name()).__get__(owner) if stock else getattr(owner, self.seam_name())
        if self.generation == "legacy":
            return method([list(ids)], [[1.0] * len(ids)])
        return method([[(t, 1.0) for t in ids]])


@contextlib.contextmanager
def forge_world(tmp_path, encoder_loader=None, generation="legacy"):
    models_dir = os.path.join(str(tmp_path), "models")
    os.makedirs(os.path.join(models_dir, "qwen35"), exist_ok=True)
    os.makedirs(os.path.join(models_dir, "text_encoder"), exist_ok=True)
    with installed():
        try:
            yield ForgeWorld(models_dir, encoder_loader, generation)
        finally:
            reset_adapter_state()
            for name in ("qwen35_anima.py", "xyz_grid.py"):
                sys.modules.pop(name, None)


_CHECKPOINT_DIR = None


def synthetic_checkpoint(seed: int = 0) -> str:
    """A small synthetic Qwen3.5 checkpoint in the real Anima layout (written once per process)."""
    global _CHECKPOINT_DIR
    import tempfile

    from lib_qwen35.synthetic.qwen35 import write_checkpoint

    if _CHECKPOINT_DIR is None:
        _CHECKPOINT_DIR = tempfile.mkdtemp(prefix="qwen35_forge_tests_")
    path = os.path.join(_CHECKPOINT_DIR, f"synthetic_seed{seed}.safetensors")
    if not os.path.exists(path):
        write_checkpoint(path, seed=seed)
    return path


def place_weights(world, name="qwen35_4b.safetensors", folder="qwen35", seed=0) -> str:
    """Link the synthetic checkpoint into the world's models folder under `name`."""
    target = os.path.join(world.models_dir, folder, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        os.symlink(synthetic_checkpoint(seed), target)
    return target


def write_alignment(path, seed=0, dim=1024, orthogonal=True):
    """An alignment file in the published format (random orthogonal rotation, random means)."""
    import torch

    from lib_qwen35.model.output_stage import Alignment

    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    rotation = q.float() if orthogonal else torch.randn(dim, dim, generator=g)
    Alignment(rotation, torch.randn(dim, generator=g) * 0.1, torch.randn(dim, generator=g) * 0.1).save(path)
    return path


def write_calibration(path, seed=0, dim=1024):
    import torch

    from lib_qwen35.model.output_stage import Calibration

    g = torch.Generator().manual_seed(seed)
    Calibration(1.0 + 0.1 * torch.rand(dim, generator=g), 0.05 * torch.randn(dim, generator=g)).save(path)
    return path
