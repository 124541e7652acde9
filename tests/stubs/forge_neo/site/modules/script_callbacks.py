"""Stand-in for modules/script_callbacks.py: the callback registry and the callbacks we use."""

import collections

ScriptCallback = collections.namedtuple("ScriptCallback", ["script", "callback", "name"])

callback_map = dict(
    callbacks_app_started=[],
    callbacks_model_loaded=[],
    callbacks_ui_settings=[],
    callbacks_infotext_pasted=[],
    callbacks_script_unloaded=[],
    callbacks_before_ui=[],
    callbacks_ui_tabs=[],
)


def clear_callbacks():
    for callback_list in callback_map.values():
        callback_list.clear()


def _add(category, fun, name=None):
    callback_map["callbacks_" + category].append(ScriptCallback("stub", fun, name))


def _run(category, *args):
    from modules import errors

    for c in callback_map["callbacks_" + category]:
        try:
            c.callback(*args)
        except Exception:  # noqa: BLE001 - as Forge: a failing callback is reported
            errors.report(f"Error executing callback {c.callback} for {category}", exc_info=True)


def on_app_started(callback, *, name=None):
    _add("app_started", callback, name)


def on_model_loaded(callback, *, name=None):
    _add("model_loaded", callback, name)


def on_ui_settings(callback, *, name=None):
    _add("ui_settings", callback, name)


def on_infotext_pasted(callback, *, name=None):
    _add("infotext_pasted", callback, name)


def on_script_unloaded(callback, *, name=None):
    _add("script_unloaded", callback, name)


def on_before_ui(callback, *, name=None):
    _add("before_ui", callback, name)


def on_ui_tabs(callback, *, name=None):
    _add("ui_tabs", callback, name)


def ui_tabs_callback():
    """Like Forge: each callback returns None or a list of (gradio Blocks, title, elem_id)."""
    from modules import errors

    res = []
    for c in callback_map["callbacks_ui_tabs"]:
        try:
            res += c.callback() or []
        except Exception:  # noqa: BLE001 - as Forge: a failing callback is reported
            errors.report(f"Error executing callback {c.callback} for ui_tabs", exc_info=True)
    return res


def model_loaded_callback(sd_model):
    _run("model_loaded", sd_model)


def ui_settings_callback():
    _run("ui_settings")


def script_unloaded_callback():
    _run("script_unloaded")


def before_ui_callback():
    _run("before_ui")


def infotext_pasted_callback(infotext, params):
    _run("infotext_pasted", infotext, params)
