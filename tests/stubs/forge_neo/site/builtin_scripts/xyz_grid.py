"""Stand-in for scripts/xyz_grid.py (Forge Neo): AxisOption / AxisOptionTxt2Img / AxisOptionImg2Img,
the module-level axis_options list the UI filters per tab, value parsing, and the cell loop that runs
apply(pc, x, xs) on a shallow copy of p before process_images(pc). Loaded like Forge loads scripts,
under the module name "xyz_grid.py"."""

import csv
from copy import copy
from io import StringIO

import modules.scripts as scripts
from modules.processing import process_images


def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)

    return fun


def format_value_add_label(p, opt, x):
    if type(x) is float:
        x = round(x, 8)
    return f"{opt.label}: {x}"


def do_nothing(*args, **kwargs):
    pass


class AxisOption:
    def __init__(self, label, type, apply, format_value=format_value_add_label, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


class AxisOptionImg2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = True


class AxisOptionTxt2Img(AxisOption):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_img2img = False


axis_options = [
    AxisOption("Nothing", str, do_nothing),
    AxisOption("Seed", int, apply_field("seed")),
    AxisOption("Steps", int, apply_field("steps")),
    AxisOptionTxt2Img("Hires steps", int, apply_field("hr_second_pass_steps")),
]


def options_for_tab(is_img2img):
    """What Script.ui() offers: plain AxisOption everywhere, the subclasses on their tab only."""
    return [x for x in axis_options if type(x) is AxisOption or x.is_img2img == is_img2img]


def process_axis(opt, values_csv):
    values = [v.strip() for v in next(csv.reader(StringIO(values_csv), skipinitialspace=True))]
    values = [v for v in values if v != ""]
    if opt.choices is not None:
        allowed = opt.choices()
        bad = [v for v in values if v not in allowed]
        if bad:
            raise RuntimeError(f"{opt.label}: not in {allowed}: {bad}")
    converted = [opt.type(v) for v in values]
    if opt.confirm:
        opt.confirm(None, converted)
    return converted


def run_cells(p, opt, values):
    """One image per value, like the X axis of the plot."""
    results = []
    for x in values:
        pc = copy(p)
        opt.apply(pc, x, values)
        results.append(process_images(pc))
    return results


class Script(scripts.Script):
    def title(self):
        return "X/Y/Z plot"

    def ui(self, is_img2img):
        self.current_axis_options = options_for_tab(is_img2img)
        return []
