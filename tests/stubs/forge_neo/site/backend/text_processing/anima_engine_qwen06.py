"""Stand-in for the rewritten backend/text_processing/anima_engine.py (Forge Neo after 21886f41): `Qwen06Engine`.
(The real file replaces AnimaTextProcessingEngine in the same module; the stand-ins keep both generations
side by side.) Same constructor, attributes and behaviour: per line, the Qwen ids (weights forced to 1.0)
go through `text_encoder.encode_token_weights` (SDClipModel), the T5 ids and weights through the LLM adapter
`text_encoder.transformer.preprocess_text_embeds`, then T5 weights multiply and rows pad to 512. Finished
tensors are cached per line within one call."""

import torch

from backend import memory_management
from backend.args import dynamic_args
from backend.text_processing import emphasis
from modules.shared import opts

from ._comfy import INF, SDClipModel, SDTokenizer


class Qwen06Engine:
    def __init__(self, text_encoder, qwen_tokenizer, t5_tokenizer):
        self.text_encoder = SDClipModel(text_encoder, layer="last", layer_idx=None, special_tokens={"pad": 151643}, layer_norm_hidden_state=False,
                                        enable_attention_masks=True, return_attention_masks=True)
        self.qwen_tokenizer = SDTokenizer(qwen_tokenizer, pad_with_end=False, has_start_token=False, has_end_token=False, pad_to_max_length=False,
                                          max_length=INF, min_length=1, pad_token=151643)
        self.t5_tokenizer = SDTokenizer(t5_tokenizer, pad_with_end=False, has_start_token=False, pad_to_max_length=False, max_length=INF, min_length=1)

    @property
    def emphasis(self):
        return emphasis.get_current_option(opts.emphasis)()

    def tokenize(self, texts):
        return self.qwen_tokenizer.tokenizer(texts)["input_ids"], self.t5_tokenizer.tokenizer(texts)["input_ids"]

    def __call__(self, texts):
        if any(emphasis.uses_emphasis(text) for text in texts) and self.emphasis.name in ("None", "Ignore"):
            dynamic_args.last_extra_generation_params["Emphasis"] = self.emphasis.name
        no_weights, ignore = self.emphasis.name == "None", self.emphasis.name == "Ignore"
        zs, cache = [], {}
        for line in texts:
            if line not in cache:
                qwen = [[(t, 1.0) for t, _ in section] for section in self.qwen_tokenizer.tokenize_with_weights(line, disable_weights=no_weights)]
                t5 = self.t5_tokenizer.tokenize_with_weights(line, disable_weights=no_weights)[0]
                cond = self.text_encoder.encode_token_weights(qwen)[0]
                ids = torch.tensor([t for t, _ in t5], dtype=torch.int).unsqueeze(0)
                weights = torch.tensor([1.0 if ignore else w for _, w in t5]).unsqueeze(0).unsqueeze(-1)
                cache[line] = self._preprocess(cond, ids, weights)
            zs.append(cache[line])
        return zs

    def _preprocess(self, cross_attn, t5xxl_ids, t5xxl_weights):
        device = memory_management.text_encoder_device()
        out = self.text_encoder.transformer.preprocess_text_embeds(cross_attn.to(device), t5xxl_ids.to(device))
        out.mul_(t5xxl_weights.to(device))
        if out.shape[1] < 512:
            out = torch.nn.functional.pad(out, (0, 0, 0, 512 - out.shape[1]))
        return out
