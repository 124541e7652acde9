"""Stand-in for SD.Next's pipelines/anima/anima_image.py: img2img (and inpaint) pipelines built as
subclasses of the txt2img class; their __call__ encodes the init image and calls the base __call__."""

import torch


def build_anima_pipeline_classes(base_cls):
    class AnimaImageToImagePipeline(base_cls):
        @torch.no_grad()
        def __call__(self, prompt=None, negative_prompt=None, image=None, strength=0.8, height=64, width=64,
                     num_inference_steps=2, guidance_scale=4.0, num_images_per_prompt=1, generator=None, latents=None,
                     prompt_embeds=None, negative_prompt_embeds=None, output_type="pil", return_dict=True, max_sequence_length=512):
            init = image if torch.is_tensor(image) else torch.zeros(1, 4, height // 16, width // 16)
            noise = torch.randn(init.shape, generator=generator)
            noised = strength * noise + (1.0 - strength) * init
            return super().__call__(prompt=prompt, negative_prompt=negative_prompt, height=height, width=width,
                                    num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                    num_images_per_prompt=num_images_per_prompt, generator=generator, latents=noised,
                                    prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_prompt_embeds,
                                    output_type=output_type, return_dict=return_dict, max_sequence_length=max_sequence_length)

    class AnimaInpaintPipeline(AnimaImageToImagePipeline):
        pass

    return AnimaImageToImagePipeline, AnimaInpaintPipeline
