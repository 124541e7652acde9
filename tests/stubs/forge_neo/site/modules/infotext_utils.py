"""Stand-in for modules/infotext_utils.py: PasteField, quote/unquote, the infotext parameter regex, a
parse_generation_parameters reduced to the parameter line, and paste() = connect_paste's paste_func."""

import json
import re

import gradio as gr

re_param_code = r'\s*([\w\s\-\/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)


class PasteField(tuple):
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None
        self.api = api


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if not text or not (text.startswith('"') and text.endswith('"')):
        return text
    try:
        return json.loads(text)
    except Exception:  # noqa: BLE001 - as Forge: an unparsable value stays as written
        return text


def create_infotext(prompt, negative_prompt, generation_params):
    """processing.create_infotext's layout: prompt, negative prompt, then 'k: v, ...' with quoting."""
    text = ", ".join(k if k == v else f"{k}: {quote(v)}" for k, v in generation_params.items() if v is not None)
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{text}".strip()


def parse_generation_parameters(x):
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    res = {}
    for k, v in re_param.findall(lastline):
        res[k] = unquote(v)
    prompt_lines = [line for line in lines if not line.startswith("Negative prompt:")]
    res["Prompt"] = "\n".join(prompt_lines)
    return res


def _parse_info(output, key, params):
    v = key(params) if callable(key) else params.get(key, None)
    if v is None:
        return gr.skip()
    if isinstance(v, dict) and v.get("__type__") == "update":
        return v
    try:
        valtype = type(output.value)
        if valtype is bool and v == "False":
            val = False
        elif valtype is int:
            val = float(v)
        else:
            val = valtype(v)
        return gr.update(value=val)
    except Exception:  # noqa: BLE001 - as Forge: a value that does not convert is skipped
        return gr.skip()


def paste(paste_fields, infotext):
    """What clicking "Send to txt2img" / PNG Info paste returns: one update per field."""
    params = parse_generation_parameters(infotext)
    return [_parse_info(output, key, params) for output, key in paste_fields]
