"""Stand-in for SD.Next's modules/shared.py: opts (modules/options_handler.Options: data, then the option's
default, else AttributeError), OptionInfo (modules/ui_definitions), cmd_opts, state, sd_model."""

import types


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, folder=False, submit=None, comment_before="", comment_after="", category_id=None, *args, **kwargs):
        self.default, self.label, self.component, self.component_args = default, label, component, component_args
        self.section = section


class Options:
    def __init__(self):
        object.__setattr__(self, "data", {})
        object.__setattr__(self, "data_labels", {})

    def __getattr__(self, item):
        data = object.__getattribute__(self, "data")
        labels = object.__getattribute__(self, "data_labels")
        if item in data:
            return data[item]
        if item in labels:
            return labels[item].default
        return object.__getattribute__(self, item)

    def __setattr__(self, key, value):
        self.data[key] = value

    def add_option(self, key, info):
        self.data_labels[key] = info


class State:
    def __init__(self):
        self.interrupted = False
        self.skipped = False
        self.jobs = []

    def begin(self, title="", api=None, task_id=None):
        self.jobs.append(title)
        return len(self.jobs)

    def end(self, jobid=None, api=None):
        pass


opts = Options()
opts.data.update(diffusers_offload_mode="none", disable_apply_params="", clip_skip_enabled=False, prompt_attention="fixed")
cmd_opts = types.SimpleNamespace(lowvram=False, medvram=False, profile=False)
state = State()
sd_model = None
sd_model_type = "none"
models_path = None
