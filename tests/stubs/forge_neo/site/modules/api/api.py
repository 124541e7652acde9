"""Stand-in for the alwayson_scripts handling of modules/api/api.py (txt2img / img2img), and for its `infotext`
request field (apply_infotext): each paste field whose component is a script input is called with the parsed
infotext; a generic_update dict is unwrapped, anything else converted with type(component.value); the values
become the script args the request's alwayson_scripts then override."""

from modules import infotext_utils


class HTTPException(Exception):
    def __init__(self, status_code, detail):
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


def script_name_to_index(name, scripts):
    try:
        return [script.title().lower() for script in scripts].index(name.lower())
    except Exception as e:
        raise HTTPException(status_code=422, detail=f"Script '{name}' not found") from e


def init_default_script_args(script_runner):
    """Default args are the values of the components each script's ui() returns."""
    last = max([1] + [s.args_to for s in script_runner.scripts if s.args_to is not None])
    script_args = [None] * last
    script_args[0] = 0
    for script in script_runner.alwayson_scripts:
        script_args[script.args_from : script.args_to] = [c.value for c in script.controls]
    return script_args


def apply_infotext(infotext, possible_fields, script_runner, mentioned_script_args):
    """The script part of Api.apply_infotext: fills mentioned_script_args {index: value}."""
    if not infotext:
        return {}
    params = infotext_utils.parse_generation_parameters(infotext)

    def get_field_value(field, params):
        value = field.function(params) if field.function else params.get(field.label)
        if value is None:
            return None
        target_type = type(field.component.value)
        if target_type is type(None):
            return None
        if isinstance(value, dict) and value.get("__type__") == "generic_update":
            value = value.get("value")
        if value is not None and not isinstance(value, target_type):
            value = target_type(value)
        return value

    indexes = {id(v): i for i, v in enumerate(script_runner.inputs)}
    for field in possible_fields:
        if id(field.component) in indexes:
            value = get_field_value(field, params)
            if value is not None:
                mentioned_script_args[indexes[id(field.component)]] = value
    return params


def init_script_args(alwayson_scripts, default_script_args, script_runner, *, input_script_args=None):
    script_args = default_script_args.copy()
    for index, value in (input_script_args or {}).items():
        script_args[index] = value
    for name, payload in (alwayson_scripts or {}).items():
        script = script_runner.scripts[script_name_to_index(name, script_runner.scripts)]
        if not script.alwayson:
            raise HTTPException(422, "Cannot have a selectable script in the always on scripts params")
        if "args" in payload:
            for idx in range(0, min(script.args_to - script.args_from, len(payload["args"]))):
                script_args[script.args_from + idx] = payload["args"][idx]
    return script_args
