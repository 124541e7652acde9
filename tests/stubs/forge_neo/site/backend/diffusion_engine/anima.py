"""Stand-in for backend/diffusion_engine/anima.py: the Anima engine object that owns the text engine and
calls it from get_learned_conditioning after loading the TE, in each Forge Neo generation:

    legacy         AnimaTextProcessingEngine on text_processing_engine_anima   (neo-2.26 and earlier)
    qwen06-anima   Qwen06Engine on text_processing_engine_anima               (21886f41 .. 2.29.1)
    qwen06         Qwen06Engine on text_processing_engine_qwen                (2.29.2 and later)
"""

import torch

from backend import memory_management
from backend.text_processing.anima_engine import AnimaTextProcessingEngine
from backend.text_processing.anima_engine_qwen06 import Qwen06Engine

GENERATIONS = {
    "legacy": (AnimaTextProcessingEngine, "text_processing_engine_anima"),
    "qwen06-anima": (Qwen06Engine, "text_processing_engine_anima"),
    "qwen06": (Qwen06Engine, "text_processing_engine_qwen"),
}


class CheckpointInfo:
    def __init__(self, name):
        self.short_title = name
        self.name_for_extra = name


class Anima:
    is_wan = True

    def __init__(self, text_encoder, qwen_tokenizer, t5_tokenizer, name="anima_stub", generation="legacy"):
        engine_class, self.engine_attr = GENERATIONS[generation]
        setattr(self, self.engine_attr, engine_class(text_encoder=text_encoder, qwen_tokenizer=qwen_tokenizer, t5_tokenizer=t5_tokenizer))
        self.sd_checkpoint_info = CheckpointInfo(name)
        self.clip_patcher = object()

    @property
    def text_engine(self):
        return getattr(self, self.engine_attr)

    @torch.inference_mode()
    def get_learned_conditioning(self, prompt):
        memory_management.load_model_gpu(self.clip_patcher)
        return self.text_engine(prompt)


class NotAnima:
    """Any other model (e.g. SDXL): no text_processing_engine_anima."""

    is_wan = False

    def __init__(self, name="sdxl_stub"):
        self.sd_checkpoint_info = CheckpointInfo(name)

    def get_learned_conditioning(self, prompt):
        return [torch.full((1, 77, 2048), float(len(p))) for p in prompt]


class QwenEngineOfAnotherModel:
    """Like Z-Image's Qwen34BEngine (2.29.2+): shares text_processing_engine_qwen, has no T5 tokenizer or adapter."""

    def __init__(self, text_encoder, tokenizer):
        from backend.text_processing._comfy import INF, SDTokenizer

        self.text_encoder = text_encoder
        self.tokenizer = SDTokenizer(tokenizer, pad_with_end=False, has_start_token=False, has_end_token=False, pad_to_max_length=False,
                                     max_length=INF, min_length=1, pad_token=151643)

    def __call__(self, texts):
        return [torch.full((1, 8, 2560), float(len(t))) for t in texts]


class ZImage(NotAnima):
    def __init__(self, text_encoder, tokenizer, name="zimage_stub"):
        super().__init__(name)
        self.text_processing_engine_qwen = QwenEngineOfAnotherModel(text_encoder, tokenizer)

    def get_learned_conditioning(self, prompt):
        return self.text_processing_engine_qwen(prompt)
