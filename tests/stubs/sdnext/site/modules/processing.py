"""Stand-in for SD.Next's modules/processing.py, processing_diffusers.py and processing_info.py, with the
behaviour the extension depends on:
- process_images: before_process -> process_images_inner, after_process_callback in a finally;
- process_images_inner: Script.process, then per batch the prompts slice, before_process_batch,
  process_batch, the process_images hook, process_diffusers; postprocess only when not interrupted;
- process_base: the pipeline is called with the prompt lists; ValueError / RuntimeError are caught (the
  generation is marked interrupted, logged, no image), AssertionError only logged; anything else
  propagates (to the UI's error box / the API's error reply);
- img2img runs on a pipeline switched to IMAGE_2_IMAGE; hires switches the pipeline (a new object) and calls
  it again on the base output;
- the infotext: prompt, negative, parameters, then p.extra_generation_params (quoted like SD.Next)."""

import torch

from modules import errors, infotext, script_callbacks, sd_models, shared


class StableDiffusionProcessing:
    def __init__(self, prompt="", negative_prompt="", seed=1234, steps=2, cfg_scale=4.0, width=64, height=64,
                 batch_size=1, n_iter=1, scripts=None, script_args=None, enable_hr=False, hr_scale=2.0,
                 denoising_strength=0.5, refiner_prompt="", refiner_negative="", xyz=False, **kwargs):
        self.prompt, self.negative_prompt, self.seed, self.steps, self.cfg_scale = prompt, negative_prompt, seed, steps, cfg_scale
        self.width, self.height, self.batch_size, self.n_iter = width, height, batch_size, n_iter
        self.scripts, self.script_args = scripts, list(script_args or [])
        self.per_script_args = {}
        self.extra_generation_params = {}
        self.override_settings = {}
        self.enable_hr, self.hr_scale, self.denoising_strength = enable_hr, hr_scale, denoising_strength
        self.refiner_prompt, self.refiner_negative = refiner_prompt, refiner_negative
        self.xyz, self.init_images, self.ops = xyz, None, []
        self.__dict__.update(kwargs)

    def init(self):
        count = self.batch_size * self.n_iter
        prompts = self.prompt if isinstance(self.prompt, list) else [self.prompt] * count
        negatives = self.negative_prompt if isinstance(self.negative_prompt, list) else [self.negative_prompt] * count
        self.all_prompts, self.all_negative_prompts = list(prompts), list(negatives)
        self.all_seeds = [self.seed + i for i in range(count)]


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    pass


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    def __init__(self, init_images=None, **kwargs):
        super().__init__(**kwargs)
        self.init_images = init_images


class Processed:
    def __init__(self, p, images, infotexts):
        self.images, self.infotexts = images, infotexts
        self.info = infotexts[0] if infotexts else ""
        self.extra_generation_params = p.extra_generation_params


def create_infotext(p, index=0):
    args = {"Steps": p.steps, "Size": f"{p.width}x{p.height}", "Seed": p.all_seeds[index], "CFG scale": p.cfg_scale,
            "App": "SD.Next", "Pipeline": type(shared.sd_model).__name__}
    args.update(p.extra_generation_params)
    params = ", ".join(f"{k}: {infotext.quote(v)}" for k, v in args.items() if v is not None)
    negative = f"\nNegative prompt: {p.all_negative_prompts[index]}" if p.all_negative_prompts[index] else ""
    return f"{p.all_prompts[index]}{negative}\n{params}"


def process_images(p):
    shared.state.interrupted = False
    if p.scripts is not None:
        p.scripts.before_process(p)
    try:
        return process_images_inner(p)
    finally:
        script_callbacks.after_process_callback(p)


def process_images_inner(p):
    if p.scripts is not None:
        p.scripts.process(p)
    p.init()
    images, infotexts = [], []
    for n in range(p.n_iter):
        if shared.state.interrupted:
            break
        p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        p.negative_prompts = p.all_negative_prompts[n * p.batch_size:(n + 1) * p.batch_size]
        p.seeds = p.all_seeds[n * p.batch_size:(n + 1) * p.batch_size]
        if p.scripts is not None:
            p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds)
            p.scripts.process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds)
            p.scripts.process_images(p)
        samples = process_diffusers(p)
        if shared.state.interrupted:
            break
        for i, sample in enumerate(samples):
            images.append(sample)
            infotexts.append(create_infotext(p, n * p.batch_size + i))
    if not p.xyz:
        shared.sd_model = sd_models.set_diffuser_pipe(shared.sd_model, sd_models.DiffusersTaskType.TEXT_2_IMAGE)
    processed = Processed(p, images, infotexts)
    if p.scripts is not None and not (shared.state.interrupted or shared.state.skipped):
        p.scripts.postprocess(p, processed)
    return processed


def process_diffusers(p):
    task = sd_models.DiffusersTaskType.IMAGE_2_IMAGE if p.init_images is not None else sd_models.DiffusersTaskType.TEXT_2_IMAGE
    shared.sd_model = sd_models.set_diffuser_pipe(shared.sd_model, task)
    output = process_base(p)
    if output is None or shared.state.interrupted:
        return []
    if p.enable_hr:
        output = process_hires(p, output)
        if output is None or shared.state.interrupted:
            return []
    return list(output.images)


def _generator(p):
    return torch.Generator().manual_seed(int(p.seeds[0]))


def _call(p, **task_args):
    args = dict(prompt=p.prompts, negative_prompt=p.negative_prompts, num_inference_steps=p.steps,
                guidance_scale=p.cfg_scale, width=p.width, height=p.height, generator=_generator(p), **task_args)
    try:
        return shared.sd_model(**args)
    except AssertionError as e:
        print(e)
    except (ValueError, RuntimeError) as e:
        shared.state.interrupted = True
        errors.display(e, "Processing")
    return None


def process_base(p):
    task_args = {"image": p.init_images[0]} if p.init_images is not None else {}
    return _call(p, **task_args)


def process_hires(p, output):
    shared.sd_model = sd_models.set_diffuser_pipe(shared.sd_model, sd_models.DiffusersTaskType.IMAGE_2_IMAGE)
    prompts, negatives = p.prompts, p.negative_prompts
    if p.refiner_prompt:
        p.prompts = [p.refiner_prompt] * len(prompts)
    if p.refiner_negative:
        p.negative_prompts = [p.refiner_negative] * len(negatives)
    try:
        return _call(p, image=output.images, strength=p.denoising_strength)
    finally:
        p.prompts, p.negative_prompts = prompts, negatives
