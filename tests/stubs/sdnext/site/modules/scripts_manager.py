"""Stand-in for SD.Next's modules/scripts_manager.py: Script, AlwaysVisible, scripts_data, load_scripts
(module name = the file's base name), and a ScriptRunner whose hooks get p.per_script_args[title] (the API
request's args, exactly) or the slice of p.script_args, each call wrapped: an exception is logged
(errors.display) and processing goes on."""

from __future__ import annotations

import collections
import importlib.util
import os
import re

import gradio as gr

from modules import errors, script_callbacks

AlwaysVisible = object()
ScriptClassData = collections.namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data: list = []
scripts_txt2img = scripts_img2img = scripts_control = scripts_current = None


class PostprocessBatchListArgs:
    def __init__(self, images):
        self.images = images


class Script:
    parent = None
    name = None
    filename = None
    args_from = 0
    args_to = 0
    alwayson = False
    is_txt2img = False
    is_img2img = False
    api_info = None
    group = None
    infotext_fields = None
    paste_field_names = None
    standalone = False
    external = False
    on_before_component_elem_id = []   # class-level lists in SD.Next too
    on_after_component_elem_id = []

    def title(self):
        raise NotImplementedError

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def process_images(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def elem_id(self, item_id):
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{self.parent}_{title}_{item_id}"


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_scripts(paths):
    scripts_data.clear()
    script_callbacks.clear_callbacks()
    for path in paths:
        try:
            module = load_module(path)
        except Exception as e:  # noqa: BLE001 - as SD.Next: a script that fails to load is reported
            errors.display(e, f"Load script: {path}")
            continue
        for obj in module.__dict__.values():
            if isinstance(obj, type) and issubclass(obj, Script) and obj is not Script:
                scripts_data.append(ScriptClassData(obj, path, os.path.dirname(path), module))


class ScriptRunner:
    def __init__(self, name=""):
        self.name = name
        self.scripts, self.alwayson_scripts, self.selectable_scripts = [], [], []
        self.infotext_fields, self.paste_field_names = [], []
        self.inputs = [None]

    def initialize_scripts(self, is_img2img=False, is_control=False):
        self.is_img2img = is_img2img
        for data in sorted(scripts_data, key=lambda x: x.script_class().title().lower()):
            script = data.script_class()
            script.filename, script.is_img2img, script.is_txt2img = data.path, is_img2img, not is_img2img
            visibility = script.show(is_img2img)
            if visibility is AlwaysVisible:
                script.alwayson = True
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
            elif visibility:
                self.scripts.append(script)
                self.selectable_scripts.append(script)

    def setup_ui(self, parent="txt2img"):
        global scripts_current
        scripts_current = self
        inputs = [None]   # position 0: the selectable-script dropdown
        with gr.Blocks():
            for script in self.alwayson_scripts + self.selectable_scripts:
                script.parent = parent
                script.args_from = script.args_to = len(inputs)
                try:
                    controls = script.ui(script.is_img2img)
                except Exception as e:  # noqa: BLE001 - as SD.Next: a failing script is reported
                    errors.display(e, f"Create Script UI: {script.filename}")
                    continue
                if controls is None:
                    continue
                script.name = script.title().lower()
                inputs += controls
                script.args_to = len(inputs)
                self.infotext_fields += script.infotext_fields or []
                self.paste_field_names += script.paste_field_names or []
        self.inputs = inputs
        return inputs

    def after_component(self, component, **kwargs):
        for script in self.scripts:
            if not hasattr(script, "after_component"):
                continue
            try:
                script.after_component(component, **kwargs)
            except Exception as e:  # noqa: BLE001 - as SD.Next: a failing script is reported
                errors.display(e, f"Running script after component: fn={script.filename}")

    def _each(self, method, p, *extra, **kwargs):
        for script in self.alwayson_scripts:
            try:
                if script.args_to > 0 and script.args_to >= script.args_from:
                    args = p.per_script_args.get(script.title(), p.script_args[script.args_from:script.args_to])
                    getattr(script, method)(p, *extra, *args, **kwargs)
            except Exception as e:  # noqa: BLE001 - as SD.Next: a failing script is reported
                errors.display(e, f"Running script {method}: {script.filename}")

    def before_process(self, p, **kwargs):
        self._each("before_process", p, **kwargs)

    def process(self, p, **kwargs):
        self._each("process", p, **kwargs)

    def before_process_batch(self, p, **kwargs):
        self._each("before_process_batch", p, **kwargs)

    def process_batch(self, p, **kwargs):
        self._each("process_batch", p, **kwargs)

    def process_images(self, p, **kwargs):
        self._each("process_images", p, **kwargs)
        return None

    def postprocess(self, p, processed):
        self._each("postprocess", p, processed)

    def run(self, p, *args):
        index = args[0] if args else 0
        if not index:
            return None
        script = self.selectable_scripts[index - 1]
        return script.run(p, *p.per_script_args.get(script.title(), args[script.args_from:script.args_to]))
