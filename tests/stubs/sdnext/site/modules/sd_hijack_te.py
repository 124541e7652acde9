"""Stand-in for SD.Next's modules/sd_hijack_te.py: `init_hijack(pipe)` replaces pipe.encode_prompt with
hijack_encode_prompt, which serves (prompt_embeds, negative_prompt_embeds) from a 16-entry cache keyed on
the positive prompt only (emptied when id(shared.sd_model) changes), and catches every exception of the
encode: it logs it and returns the prompt instead of embeddings."""

from modules import errors, shared


class PromptCache:
    def __init__(self):
        self.cache = {}
        self.id = None
        self.max = 16

    def get(self, prompt):
        if self.id != id(shared.sd_model):
            self.cache.clear()
            self.id = id(shared.sd_model)
        if (isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str)):
            cached = self.cache.get(prompt[0], None)
        elif isinstance(prompt, str):
            cached = self.cache.get(prompt, None)
        else:
            cached = None
        return cached

    def set(self, prompt, encoded):
        if len(self.cache) >= self.max:
            oldest_key = next(iter(self.cache))
            del self.cache[oldest_key]
        if (isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str)):
            self.cache[prompt[0]] = encoded
        elif isinstance(prompt, str):
            self.cache[prompt] = encoded


prompt_cache = PromptCache()
encodes = []   # prompts actually encoded (cache misses), for tests


def hijack_encode_prompt(*args, **kwargs):
    res = None
    try:
        args_copy = list(args)
        prompt = kwargs.get("prompt", None)
        if prompt is None and len(args_copy) > 0:
            prompt = args_copy[0]
        prompt = [p.strip(", \n") if isinstance(p, str) else p for p in prompt] if isinstance(prompt, list) else prompt
        res = prompt
        cached = prompt_cache.get(prompt)
        if cached is not None:
            res = cached
        else:
            encodes.append((prompt, kwargs.get("negative_prompt")))
            res = shared.sd_model.orig_encode_prompt(*args_copy, **kwargs)
            prompt_cache.set(prompt, res)
    except Exception as e:  # noqa: BLE001 - as SD.Next: a failing encode is reported
        errors.display(e, "Encode prompt")
    return res


def init_hijack(pipe):
    if pipe is not None and not hasattr(pipe, "orig_encode_prompt") and hasattr(pipe, "encode_prompt"):
        pipe.orig_encode_prompt = pipe.encode_prompt
        pipe.encode_prompt = hijack_encode_prompt
