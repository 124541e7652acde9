"""Stand-in for backend/diffusion_engine/anima.py: the Anima engine object that owns the text engine
(`text_processing_engine_anima`) and calls it from get_learned_conditioning after loading the TE."""

import torch

from backend import memory_management
from backend.text_processing.anima_engine import AnimaTextProcessingEngine


class CheckpointInfo:
    def __init__(self, name):
        self.short_title = name
        self.name_for_extra = name


class Anima:
    is_wan = True

    def __init__(self, text_encoder, qwen_tokenizer, t5_tokenizer, name="anima_stub"):
        self.text_processing_engine_anima = AnimaTextProcessingEngine(text_encoder=text_encoder, qwen_tokenizer=qwen_tokenizer, t5_tokenizer=t5_tokenizer)
        self.sd_checkpoint_info = CheckpointInfo(name)
        self.clip_patcher = object()

    @torch.inference_mode()
    def get_learned_conditioning(self, prompt):
        memory_management.load_model_gpu(self.clip_patcher)
        return self.text_processing_engine_anima(prompt)


class NotAnima:
    """Any other model (e.g. SDXL): no text_processing_engine_anima."""

    is_wan = False

    def __init__(self, name="sdxl_stub"):
        self.sd_checkpoint_info = CheckpointInfo(name)

    def get_learned_conditioning(self, prompt):
        return [torch.full((1, 77, 2048), float(len(p))) for p in prompt]
