"""Stand-in for modules/scripts.py: Script, AlwaysVisible, scripts_data (ScriptClassData) and a
ScriptRunner with Forge's semantics: args sliced by args_from/args_to in ui() order, and exceptions in
process/process_batch/postprocess reported and swallowed (the generation goes on)."""

import collections
import dataclasses
import importlib.util
import inspect
import os
import re

import gradio as gr

from modules import errors

AlwaysVisible = object()

ScriptClassData = collections.namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data = []


@dataclasses.dataclass
class OnComponent:
    component: object


class Script:
    name = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    infotext_fields = None
    paste_field_names = None
    on_after_component_elem_id = None
    sorting_priority = 0

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def after_component(self, component, **kwargs):
        pass

    def on_after_component(self, callback, *, elem_id):
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))

    def elem_id(self, item_id):
        need_tabname = self.show(True) == self.show(False)
        tabkind = "img2img" if self.is_img2img else "txt2img"
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"


def load_module(path):
    """Like modules/script_loading.load_module: the module is named after the file's base name."""
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_scripts(paths):
    """Register every Script subclass of each file, in order (built-in scripts first, like Forge)."""
    scripts_data.clear()
    for path in paths:
        module = load_module(path)
        for obj in module.__dict__.values():
            if inspect.isclass(obj) and issubclass(obj, Script) and obj is not Script:
                scripts_data.append(ScriptClassData(obj, path, os.path.dirname(path), module))


class ScriptRunner:
    def __init__(self, is_img2img=False):
        self.is_img2img = is_img2img
        self.scripts = []
        self.alwayson_scripts = []
        self.inputs = [None]
        self.infotext_fields = []
        self.paste_field_names = []
        self.after_component = {}  # elem_id -> [callback]

    def initialize_scripts(self):
        for data in scripts_data:
            script = data.script_class()
            script.filename = data.path
            script.is_img2img = self.is_img2img
            script.is_txt2img = not self.is_img2img
            if script.show(self.is_img2img) is AlwaysVisible:
                script.alwayson = True
                self.alwayson_scripts.append(script)
            self.scripts.append(script)

    def setup_ui(self):
        with gr.Blocks():
            for script in self.alwayson_scripts:
                script.args_from = len(self.inputs)
                controls = script.ui(script.is_img2img) or []
                script.name = script.title().lower()
                script.controls = controls
                self.inputs += controls
                script.args_to = len(self.inputs)
                self.infotext_fields += script.infotext_fields or []
                self.paste_field_names += script.paste_field_names or []
                for elem_id, callback in script.on_after_component_elem_id or []:
                    self.after_component.setdefault(elem_id, []).append(callback)

    def component_created(self, component):
        """What Forge does after building a component with an elem_id: the on_after_component callbacks
        for that elem_id, then every script's after_component(component, **kwargs)."""
        for callback in self.after_component.get(component.elem_id, []):
            callback(OnComponent(component=component))
        for script in self.scripts:
            script.after_component(component, elem_id=component.elem_id)

    def default_args(self):
        return [0] + [c.value for c in self.inputs[1:]]

    def _each(self, method, p, *extra, **kwargs):
        for script in self.alwayson_scripts:
            try:
                getattr(script, method)(p, *extra, *p.script_args[script.args_from : script.args_to], **kwargs)
            except Exception:  # noqa: BLE001 - as Forge: a failing script is reported
                errors.report(f"Error running {method}: {script.filename}", exc_info=True)

    def before_process(self, p):
        self._each("before_process", p)

    def process(self, p):
        self._each("process", p)

    def process_batch(self, p, **kwargs):
        self._each("process_batch", p, **kwargs)

    def postprocess(self, p, processed):
        self._each("postprocess", p, processed)
