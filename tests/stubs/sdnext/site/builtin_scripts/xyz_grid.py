"""Stand-in for SD.Next's scripts/xyz_grid.py (+ scripts/xyz/xyz_grid_classes.py): AxisOption with SD.Next's
keyword names (tipe, fmt), the module-level axis_options list, and the grid's cell runner: the axis' confirm(p,
values) first, as process_axis does, then each cell is a shallow copy of p with the axis' apply(pc, value, values),
then process_images(pc)."""

from copy import copy

from modules import processing, scripts_manager


def format_value_add_label(p, opt, x):
    return f"{opt.label}: {x}"


class AxisOption:
    def __init__(self, label, tipe, apply, fmt=format_value_add_label, confirm=None, cost=0.0, choices=None):
        self.label, self.type, self.apply, self.format_value = label, tipe, apply, fmt
        self.confirm, self.cost, self.choices = confirm, cost, choices


class AxisOptionImg2Img(AxisOption):
    is_img2img = True


class AxisOptionTxt2Img(AxisOption):
    is_img2img = False


def apply_field(field):
    def fun(p, x, xs):
        setattr(p, field, x)
    return fun


axis_options = [
    AxisOption("Nothing", str, lambda p, x, xs: None),
    AxisOption("Seed", int, apply_field("seed")),
    AxisOption("Steps", int, apply_field("steps")),
]


class XYZGridScript(scripts_manager.Script):
    def title(self):
        return "XYZ Grid Script"

    def show(self, is_img2img):
        return True

    def ui(self, is_img2img):
        return []


def run_cells(p, label, values):
    """The grid over one axis: one process_images per value, on a shallow copy of p (as SD.Next's cell())."""
    opt = next(o for o in axis_options if o.label == label)
    values = [opt.type(v) for v in values]
    if opt.choices is not None:
        assert all(v in opt.choices() for v in values), (values, opt.choices())
    if opt.confirm:                   # process_axis: before the first cell
        opt.confirm(p, values)
    results = []
    for value in values:
        pc = copy(p)
        opt.apply(pc, value, values)
        results.append(processing.process_images(pc))
    return results
