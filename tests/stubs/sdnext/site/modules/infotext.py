"""Stand-in for SD.Next's modules/infotext.py: quote() and parse() (prompt, "Negative prompt:", then
`key: value` pairs; quoted values unquoted; digits become int/float, True/False become bools)."""

import json
import re

re_param = re.compile(r'\s*([\w ]+):\s*("(?:\\"[^,]|\\"|\\|[^\"])+"|[^,]*)(?:,|$)')


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if not text or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:  # noqa: BLE001 - as SD.Next: an unparsable value stays as written
        return text


def parse(infotext):
    lines = infotext.strip().split("\n")
    params = {"Prompt": lines[0], "Negative prompt": None}
    rest = lines[1:]
    if rest and rest[0].startswith("Negative prompt:"):
        params["Negative prompt"] = rest.pop(0)[len("Negative prompt:"):].strip()
    for key, val in re_param.findall(" ".join(rest)):
        val = unquote(val).strip(" ,\n")
        if val.replace(".", "", 1).isdigit():
            params[key] = float(val) if "." in val else int(val)
        elif val in ("True", "False"):
            params[key] = val == "True"
        else:
            params[key] = val
    return params
