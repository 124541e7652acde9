"""Stand-in for SD.Next's modules/generation_parameters_copypaste.py: what "PNG Info -> Send to" and the
paste button do with a tab's infotext fields (tuples (component, key)): `paste_func`'s loop from
connect_paste. For a function key the value is key(params); None leaves the control; a gr.update() is
applied as is; any other value goes through should_skip(key) (which calls key.lower(): a function key
fails there, as in SD.Next) and is converted with type(component.value) (a bool from str(v) != "false")."""

import gradio as gr

from modules import infotext, script_callbacks, shared

type_of_gr_update = type(gr.update())


def should_skip(param: str):
    skip_params = [p.strip().lower() for p in shared.opts.disable_apply_params.split(",")]
    return param.lower() in skip_params


def paste(text, fields):
    """The updates paste_func returns for `text` (one per field)."""
    params = infotext.parse(text)
    script_callbacks.infotext_pasted_callback(text, params)
    res = []
    for output, key in fields:
        v = key(params) if callable(key) else params.get(key, None)
        if v is None:
            res.append(gr.update())
        elif isinstance(v, type_of_gr_update):
            res.append(v)
        else:
            if should_skip(key):
                res.append(gr.update())
                continue
            valtype = type(output.value)
            if valtype is bool:
                val = False if str(v).lower() == "false" else True
            else:
                val = valtype(v)
            res.append(gr.update(value=val))
    return res
