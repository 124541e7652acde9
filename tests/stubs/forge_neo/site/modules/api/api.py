"""Stand-in for the alwayson_scripts handling of modules/api/api.py (txt2img / img2img)."""


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


def init_script_args(alwayson_scripts, default_script_args, script_runner):
    script_args = default_script_args.copy()
    for name, payload in (alwayson_scripts or {}).items():
        script = script_runner.scripts[script_name_to_index(name, script_runner.scripts)]
        if not script.alwayson:
            raise HTTPException(422, "Cannot have a selectable script in the always on scripts params")
        if "args" in payload:
            for idx in range(0, min(script.args_to - script.args_from, len(payload["args"]))):
                script_args[script.args_from + idx] = payload["args"][idx]
    return script_args
