"""Stand-in for backend/text_processing/_comfy.py (Forge Neo after 21886f41, a port of ComfyUI's sd1_clip):
`SDTokenizer` and `SDClipModel` with the behaviour Anima's `Qwen06Engine` relies on, re-implemented for
the configuration it uses (no start/end token on the Qwen side, no length limit, min_length 1, pad 151643;
the T5 side strips and re-appends the tokenizer's end id 1). tests/live/test_forge_neo_contract.py holds this
stand-in against the real file of a Forge tree (FORGE_NEO_DIR): same ids, weights, masks and states.

    SDTokenizer.tokenize_with_weights(text, disable_weights=False) -> [[(id, weight), ...]]   one section
        "(x)" x1.1 per level, "(x:w)" explicit, "\\(" literal; "[x]" and BREAK are plain text
    SDClipModel.encode_token_weights([[(id, 1.0), ...]]) ->
        (z [1, T, 1024] float32 on intermediate_device(), None, {"attention_mask": int64 [1, T]})
        mask: 0 for a leading pad run (an empty prompt) and from the first later pad on
"""

import torch

from backend import memory_management

INF = 99999999
_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))


def _split_parentheses(text):
    """Top-level pieces: plain runs and balanced "(...)" groups (an unclosed group runs to the end)."""
    pieces, current, depth = [], "", 0
    for char in text:
        if char == "(" and depth == 0:
            if current:
                pieces.append(current)
            current = "("
            depth = 1
        elif char == "(":
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def _weighted_segments(text, weight):
    out = []
    for piece in _split_parentheses(text):
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner, inner_weight = piece[1:-1], weight * 1.1
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    inner_weight, inner = float(inner[colon + 1:]), inner[:colon]
                except ValueError:
                    pass
            out += _weighted_segments(inner, inner_weight)
        else:
            out.append((piece, weight))
    return out


class SDTokenizer:
    def __init__(self, tokenizer, pad_with_end=True, has_start_token=True, has_end_token=True, pad_to_max_length=True,
                 max_length=77, min_length=None, pad_token=None, **_):
        assert not has_start_token and not pad_to_max_length and max_length == INF, "only Anima's configuration"
        self.tokenizer = tokenizer
        self.min_length = min_length
        self.strips_end = has_end_token               # the tokenizer appends an end id: strip it per segment
        self.end_token = tokenizer("")["input_ids"][0] if has_end_token else None
        self.pad_token = pad_token if pad_token is not None else (self.end_token if pad_with_end else 0)

    def tokenize_with_weights(self, text, disable_weights=False, **_):
        for plain, code in _ESCAPES:
            text = text.replace(plain, code)
        segments = [(text, 1.0)] if disable_weights else _weighted_segments(text, 1.0)
        section = []
        for segment, weight in segments:
            for plain, code in _ESCAPES:
                segment = segment.replace(code, plain[1])
            if segment:
                ids = self.tokenizer(segment)["input_ids"]
                section += [(t, weight) for t in (ids[:-1] if self.strips_end else ids)]
        if self.end_token is not None:
            section.append((self.end_token, 1.0))
        if self.min_length is not None and len(section) < self.min_length:
            section += [(self.pad_token, 1.0)] * (self.min_length - len(section))
        return [section]


class SDClipModel(torch.nn.Module):
    def __init__(self, model, layer="last", layer_idx=None, special_tokens=None, layer_norm_hidden_state=True,
                 enable_attention_masks=False, return_attention_masks=False, **_):
        super().__init__()
        assert layer == "last" and layer_idx is None, "only Anima's configuration"
        self.transformer = model
        self.num_layers = model.num_layers
        self.special_tokens = special_tokens
        self.layer_norm_hidden_state = layer_norm_hidden_state
        self.enable_attention_masks = enable_attention_masks
        self.return_attention_masks = return_attention_masks

    def encode_token_weights(self, token_weight_pairs):
        assert all(w == 1.0 for section in token_weight_pairs for _, w in section), "Anima passes weight 1.0 only"
        z, _, extra = self.forward([[t for t, _ in section] for section in token_weight_pairs])
        device = memory_management.intermediate_device()
        out = (torch.cat([z[k:k + 1] for k in range(z.shape[0])], dim=-2).to(device), None)
        if self.return_attention_masks:
            out += ({"attention_mask": extra["attention_mask"].flatten().unsqueeze(0).to(device)},)
        return out

    def _mask(self, ids):
        pad, mask, leading, ended = self.special_tokens["pad"], [], True, False
        for token in ids:
            leading = leading and token == pad
            mask.append(0 if ended or leading else 1)
            if not ended and not leading and token == pad:
                mask[-1], ended = 0, True
        return mask

    def forward(self, tokens):
        device = self.transformer.get_input_embeddings().weight.device
        ids = torch.tensor(tokens, device=device, dtype=torch.long)
        embeds = self.transformer.get_input_embeddings()(ids).to(torch.float32)
        mask = torch.tensor([self._mask(t) for t in tokens], device=device, dtype=torch.long)
        outputs = self.transformer(None, mask if self.enable_attention_masks else None, embeds=embeds,
                                   num_tokens=[int(m.sum()) for m in mask], intermediate_output=None,
                                   final_layer_norm_intermediate=self.layer_norm_hidden_state, dtype=torch.float32, embeds_info=[])
        return outputs[0].float(), None, {"attention_mask": mask}
