"""Stand-in for modules/processing.py: the processing objects with Forge's class-level conditioning
caches, get_conds_with_caching/setup_conds, and process_images with Forge's order of script calls:
before_process -> model reload -> process -> per batch: model reload -> process_batch -> setup_conds
(-> hires conds) -> postprocess. Exceptions from setup_conds propagate (they stop the generation)."""

from modules import infotext_utils, shared

# Tests may set this to a callable that swaps shared.sd_model, like forge_model_reload() would.
model_reload_hook = None


class StableDiffusionProcessing:
    cached_uc = [None, None, None]
    cached_c = [None, None, None]

    def __init__(self, prompt="", negative_prompt="", cfg_scale=4.0, steps=2, width=64, height=64, n_iter=1, scripts=None, script_args=None):
        self.prompt, self.negative_prompt = prompt, negative_prompt
        self.cfg_scale, self.steps, self.width, self.height, self.n_iter = cfg_scale, steps, width, height, n_iter
        self.scripts, self.script_args = scripts, list(script_args or [])
        self.extra_generation_params = {}
        self.cached_uc = StableDiffusionProcessing.cached_uc
        self.cached_c = StableDiffusionProcessing.cached_c
        self.c = self.uc = None
        self.conds_computed = 0  # how many get_learned_conditioning calls this object made

    def clear_prompt_cache(self):
        self.cached_c = [None, None, None]
        self.cached_uc = [None, None, None]
        StableDiffusionProcessing.cached_c = [None, None, None]
        StableDiffusionProcessing.cached_uc = [None, None, None]

    def cached_params(self, required_prompts, steps, hires_steps):
        # Forge's key: prompts, steps, size, model loading parameters, ... - nothing about extensions
        return (tuple(required_prompts), steps, hires_steps, self.width, self.height, id(shared.sd_model))

    def get_conds_with_caching(self, required_prompts, steps, caches, hires_steps=None):
        params = self.cached_params(required_prompts, steps, hires_steps)
        for cache in caches:
            if cache[0] is not None and params == cache[0]:
                return cache[1]
        cache = caches[0]
        cache[1] = shared.sd_model.get_learned_conditioning(list(required_prompts))
        self.conds_computed += 1
        cache[0] = params
        return cache[1]

    def setup_conds(self):
        self.uc = None if self.cfg_scale == 1 else self.get_conds_with_caching([self.negative_prompt], self.steps, [self.cached_uc])
        self.c = self.get_conds_with_caching([self.prompt], self.steps, [self.cached_c])


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    cached_hr_uc = [None, None]
    cached_hr_c = [None, None]

    def __init__(self, *args, enable_hr=False, hr_prompt=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.enable_hr, self.hr_prompt = enable_hr, hr_prompt
        self.cached_hr_uc = StableDiffusionProcessingTxt2Img.cached_hr_uc
        self.cached_hr_c = StableDiffusionProcessingTxt2Img.cached_hr_c
        self.hr_c = None

    def calculate_hr_conds(self):
        prompt = self.hr_prompt or self.prompt
        self.hr_c = self.get_conds_with_caching([prompt], self.steps, [self.cached_hr_c, self.cached_c], hires_steps=self.steps)


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    pass


class Processed:
    def __init__(self, p, infotext):
        self.infotexts = [infotext]
        self.info = infotext
        self.c, self.uc = p.c, p.uc
        self.hr_c = getattr(p, "hr_c", None)


def _reload_model():
    if model_reload_hook is not None:
        model_reload_hook()


def process_images(p):
    if p.scripts is not None:
        p.scripts.before_process(p)
    _reload_model()
    p.sd_model = shared.sd_model
    if p.scripts is not None:
        p.scripts.process(p)
    for n in range(p.n_iter):
        _reload_model()
        if p.scripts is not None:
            p.scripts.process_batch(p, batch_number=n, prompts=[p.prompt], seeds=[1], subseeds=[1])
        p.setup_conds()
        if getattr(p, "enable_hr", False):
            p.calculate_hr_conds()
    params = {"Steps": p.steps, "CFG scale": p.cfg_scale, "Size": f"{p.width}x{p.height}", **p.extra_generation_params}
    processed = Processed(p, infotext_utils.create_infotext(p.prompt, p.negative_prompt, params))
    if p.scripts is not None:
        p.scripts.postprocess(p, processed)
    return processed
