"""Stand-in for backend/text_processing/anima_engine.py (Forge Neo v3.5): same class, method names and
signatures, same behaviour: each emphasis segment is tokenized separately by the Qwen3 and T5
tokenizers (no special tokens); every Qwen multiplier is 1.0 and the weight goes to T5; one chunk; pad id
151643 when there is no Qwen token; T5 end id 1 appended; process_tokens -> [B, L, 1024] hidden states;
__call__ runs the LLM adapter (text_encoder.preprocess_text_embeds), multiplies by the T5 weights and
zero-pads to 512 rows."""

import torch

from backend import memory_management
from backend.args import dynamic_args
from backend.text_processing import emphasis, parsing
from modules.shared import opts


class PromptChunk:
    def __init__(self):
        self.qwen_tokens = []
        self.qwen_multipliers = []
        self.t5_tokens = []
        self.t5_multipliers = []


class AnimaTextProcessingEngine:
    def __init__(self, text_encoder, qwen_tokenizer, t5_tokenizer):
        self.emphasis = emphasis.get_current_option(opts.emphasis)()
        self.text_encoder = text_encoder
        self.qwen_tokenizer = qwen_tokenizer
        self.t5_tokenizer = t5_tokenizer
        self.id_pad = 151643
        self.id_end = 1

    def tokenize(self, texts):
        return (
            self.qwen_tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"],
            self.t5_tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"],
        )

    def tokenize_line(self, line):
        parsed = parsing.parse_prompt_attention(line, self.emphasis.name)
        qwen_ids, t5_ids = self.tokenize([text for text, _ in parsed])
        chunk = PromptChunk()
        for ids in qwen_ids:
            chunk.qwen_tokens += list(ids)
            chunk.qwen_multipliers += [1.0] * len(ids)
        for ids, (_, weight) in zip(t5_ids, parsed):
            chunk.t5_tokens += list(ids)
            chunk.t5_multipliers += [weight] * len(ids)
        if not chunk.qwen_tokens:
            chunk.qwen_tokens.append(self.id_pad)
            chunk.qwen_multipliers.append(1.0)
        chunk.t5_tokens.append(self.id_end)
        chunk.t5_multipliers.append(1.0)
        return [chunk]

    def __call__(self, texts):
        self.emphasis = emphasis.get_current_option(opts.emphasis)()
        if any(emphasis.uses_emphasis(x) for x in texts):
            dynamic_args.last_extra_generation_params["Emphasis"] = self.emphasis.name
        zs, cache = [], {}
        for line in texts:
            if line not in cache:
                (chunk,) = self.tokenize_line(line)
                z = self.process_tokens([chunk.qwen_tokens], [chunk.qwen_multipliers])[0]
                cache[line] = (z, torch.tensor(chunk.t5_tokens, dtype=torch.int), torch.tensor(chunk.t5_multipliers))
            zs.append(self.anima_preprocess(*cache[line]))
        return zs

    def anima_preprocess(self, cross_attn, t5xxl_ids, t5xxl_weights):
        device = memory_management.text_encoder_device()
        cross_attn = cross_attn.unsqueeze(0).to(device=device)
        t5xxl_ids = t5xxl_ids.unsqueeze(0).to(device=device)
        cross_attn = self.text_encoder.preprocess_text_embeds(cross_attn, t5xxl_ids)
        if t5xxl_weights is not None:
            cross_attn *= t5xxl_weights.unsqueeze(0).unsqueeze(-1).to(cross_attn)
        if cross_attn.shape[1] < 512:
            cross_attn = torch.nn.functional.pad(cross_attn, (0, 0, 0, 512 - cross_attn.shape[1]))
        return cross_attn

    def process_embeds(self, batch_tokens):
        device = memory_management.text_encoder_device()
        embeds_out, attention_masks, num_tokens = [], [], []
        for tokens in batch_tokens:
            mask, ids, eos = [], [], False
            for t in tokens:
                token = int(t)
                mask.append(0 if eos else 1)
                ids.append(token)
                if not eos and token == self.id_pad:
                    eos = True
            embeds_out.append(self.text_encoder.get_input_embeddings()(torch.tensor([ids], device=device, dtype=torch.long)))
            attention_masks.append(mask)
            num_tokens.append(sum(mask))
        return torch.cat(embeds_out), torch.tensor(attention_masks, device=device, dtype=torch.long), num_tokens, []

    def process_tokens(self, batch_tokens, batch_multipliers):
        embeds, mask, count, info = self.process_embeds(batch_tokens)
        z, _ = self.text_encoder(input_ids=None, embeds=embeds, attention_mask=mask, num_tokens=count, embeds_info=info)
        return z
