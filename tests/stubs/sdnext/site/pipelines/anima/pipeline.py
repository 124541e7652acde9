"""Stand-in for SD.Next's pipelines/anima/pipeline.py: AnimaTextToImagePipeline with the real
`_encode_prompt` / `encode_prompt` steps (statement for statement), on a small DiffusionPipeline base, and
a deterministic stand-in for the Cosmos DiT + Euler loop + VAE (the image is a tensor that depends on
the prompt and negative embeddings, the seed and the steps)."""

import contextlib
from typing import List, Optional, Union

import torch


class DiffusionPipeline:
    """What the Anima pipeline and SD.Next use of diffusers.DiffusionPipeline."""

    def register_modules(self, **kwargs):
        self._component_names = list(kwargs)
        for name, module in kwargs.items():
            setattr(self, name, module)

    @property
    def components(self):
        return {name: getattr(self, name) for name in self._component_names}

    @property
    def _execution_device(self):
        return torch.device("cpu")

    @contextlib.contextmanager
    def progress_bar(self, total=None):
        yield type("Bar", (), {"update": lambda self, n=1: None})()

    def maybe_free_model_hooks(self):
        pass


class AnimaTextToImagePipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->llm_adapter->transformer->vae"

    def __init__(self, text_encoder, tokenizer, t5_tokenizer, llm_adapter, transformer=None, vae=None, scheduler=None):
        super().__init__()
        self.register_modules(text_encoder=text_encoder, tokenizer=tokenizer, t5_tokenizer=t5_tokenizer,
                              llm_adapter=llm_adapter, transformer=transformer, vae=vae, scheduler=scheduler)

    def _encode_prompt(
        self,
        prompt: Union[str, List[str]],
        device: torch.device,
        dtype: torch.dtype,
        max_sequence_length: int = 512,
    ):
        prompt = [prompt] if isinstance(prompt, str) else prompt
        batch_size = len(prompt)

        all_empty = all(p.strip() == "" for p in prompt)
        if all_empty:
            return torch.zeros(batch_size, 512, self.llm_adapter.config.target_dim, device=device, dtype=dtype)

        qwen_inputs = self.tokenizer(
            prompt,
            padding=True,
            truncation=True,
            max_length=max_sequence_length,
            return_tensors="pt",
        )
        qwen_input_ids = qwen_inputs.input_ids.to(device)
        qwen_attention_mask = qwen_inputs.attention_mask.to(device)

        qwen_outputs = self.text_encoder(
            input_ids=qwen_input_ids,
            attention_mask=qwen_attention_mask,
        )
        qwen_hidden_states = qwen_outputs.last_hidden_state.to(dtype=dtype)

        t5_inputs = self.t5_tokenizer(
            prompt,
            padding=True,
            truncation=True,
            max_length=max_sequence_length,
            return_tensors="pt",
        )
        t5_input_ids = t5_inputs.input_ids.to(device)

        adapted_embeds = self.llm_adapter(
            source_hidden_states=qwen_hidden_states,
            target_input_ids=t5_input_ids,
        )

        if adapted_embeds.shape[1] < 512:
            adapted_embeds = torch.nn.functional.pad(
                adapted_embeds, (0, 0, 0, 512 - adapted_embeds.shape[1])
            )

        return adapted_embeds

    def encode_prompt(
        self,
        prompt: Union[str, List[str]],
        negative_prompt: Optional[Union[str, List[str]]] = None,
        do_classifier_free_guidance: bool = True,
        num_images_per_prompt: int = 1,
        prompt_embeds: Optional[torch.Tensor] = None,
        negative_prompt_embeds: Optional[torch.Tensor] = None,
        max_sequence_length: int = 512,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        device = device or self._execution_device
        dtype = dtype or self.text_encoder.dtype
        prompt = [prompt] if isinstance(prompt, str) else prompt

        if prompt is not None:
            batch_size = len(prompt)
        else:
            batch_size = prompt_embeds.shape[0]

        if prompt_embeds is None:
            prompt_embeds = self._encode_prompt(prompt, device, dtype, max_sequence_length)
            _, seq_len, _ = prompt_embeds.shape
            prompt_embeds = prompt_embeds.repeat(1, num_images_per_prompt, 1)
            prompt_embeds = prompt_embeds.view(batch_size * num_images_per_prompt, seq_len, -1)

        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negative_prompt = negative_prompt or ""
            negative_prompt = batch_size * [negative_prompt] if isinstance(negative_prompt, str) else negative_prompt
            negative_prompt_embeds = self._encode_prompt(negative_prompt, device, dtype, max_sequence_length)
            _, seq_len, _ = negative_prompt_embeds.shape
            negative_prompt_embeds = negative_prompt_embeds.repeat(1, num_images_per_prompt, 1)
            negative_prompt_embeds = negative_prompt_embeds.view(batch_size * num_images_per_prompt, seq_len, -1)

        return prompt_embeds, negative_prompt_embeds

    def check_inputs(self, prompt, height, width, prompt_embeds=None):
        if height % 16 != 0 or width % 16 != 0:
            raise ValueError(f"`height` and `width` have to be divisible by 16 but are {height} and {width}.")

    @torch.no_grad()
    def __call__(self, prompt=None, negative_prompt=None, height=64, width=64, num_inference_steps=2, guidance_scale=4.0,
                 num_images_per_prompt=1, generator=None, latents=None, prompt_embeds=None, negative_prompt_embeds=None,
                 output_type="pil", return_dict=True, max_sequence_length=512):
        self.check_inputs(prompt, height, width, prompt_embeds)
        self._guidance_scale = guidance_scale
        batch_size = 1 if isinstance(prompt, str) else len(prompt) if prompt is not None else prompt_embeds.shape[0]
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt=prompt, negative_prompt=negative_prompt, do_classifier_free_guidance=guidance_scale > 1.0,
            num_images_per_prompt=num_images_per_prompt, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, device=self._execution_device, max_sequence_length=max_sequence_length)
        if latents is None:
            latents = torch.randn(batch_size * num_images_per_prompt, 4, height // 16, width // 16, generator=generator)
        for _ in range(num_inference_steps):   # the stand-in DiT: velocity from the conditioning
            velocity = _dit(latents, prompt_embeds)
            if guidance_scale > 1.0:
                uncond = _dit(latents, negative_prompt_embeds)
                velocity = uncond + guidance_scale * (velocity - uncond)
            latents = latents - 0.25 * velocity
        return type("Output", (), {"images": latents.float()})()


def _dit(latents, embeds):
    pooled = embeds.float().flatten(1)                                    # [B, 512 * 1024]
    signal = torch.stack([pooled[:, i::4].sum(1) for i in range(4)], 1)   # [B, 4]
    return latents * 0.5 + torch.tanh(signal / 100.0).view(-1, 4, 1, 1)
