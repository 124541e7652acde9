"""Stand-in for SD.Next's modules/api/script.py: init_script_args. The UI defaults fill script_args, but
p.per_script_args[title] is set to the request's args exactly, and the hooks read that (not padded)."""


class HTTPException(Exception):
    def __init__(self, status_code, detail):
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


def get_script(name, runner):
    titles = [s.title().lower() for s in runner.scripts]
    return runner.scripts[titles.index(name.lower())] if name.lower() in titles else None


def init_script_args(p, alwayson_scripts, default_script_args, runner):
    script_args = list(default_script_args)
    for name, entry in (alwayson_scripts or {}).items():
        script = get_script(name, runner)
        if script is None:
            raise HTTPException(422, f"Always on script not found: {name}")
        if "args" in entry:
            for idx in range(min(script.args_to - script.args_from, len(entry["args"]))):
                script_args[script.args_from + idx] = entry["args"][idx]
            p.per_script_args[script.title()] = entry["args"]
    return script_args
