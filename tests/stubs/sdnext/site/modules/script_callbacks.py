"""Stand-in for SD.Next's modules/script_callbacks.py: registration functions and the runners, each
callback wrapped so that an exception is reported and the others still run."""

from modules import errors

_callbacks = {}


def _add(kind, fn):
    _callbacks.setdefault(kind, []).append(fn)


def _run(kind, *args):
    for fn in list(_callbacks.get(kind, [])):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - as SD.Next: a failing callback is reported
            errors.display(e, f"{kind} callback")


def clear_callbacks():
    _callbacks.clear()


def on_ui_settings(callback):
    _add("ui_settings", callback)


def on_before_ui(callback):
    _add("before_ui", callback)


def on_model_loaded(callback):
    _add("model_loaded", callback)


def on_script_unloaded(callback):
    _add("script_unloaded", callback)


def on_after_process(callback):
    _add("after_process", callback)


def on_before_process(callback):
    _add("before_process", callback)


def on_ui_tabs(callback):
    _add("ui_tabs", callback)


def on_infotext_pasted(callback):
    _add("infotext_pasted", callback)


def ui_settings_callback():
    _run("ui_settings")


def before_ui_callback():
    _run("before_ui")


def model_loaded_callback(sd_model):
    _run("model_loaded", sd_model)


def script_unloaded_callback():
    _run("script_unloaded")


def after_process_callback(p):
    _run("after_process", p)


def before_process_callback(p):
    _run("before_process", p)


def infotext_pasted_callback(infotext, params):
    _run("infotext_pasted", infotext, params)


def ui_tabs_callback():
    tabs = []
    for fn in _callbacks.get("ui_tabs", []):
        try:
            tabs += fn() or []
        except Exception as e:  # noqa: BLE001 - as SD.Next: a failing callback is reported
            errors.display(e, "ui_tabs callback")
    return tabs
