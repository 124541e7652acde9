"""Stand-in for the part of gradio that Script.ui() and settings use, shared by the Forge Neo stand-ins
(gradio 4.40) and the SD.Next ones (gradio 3.43): components with a value, blocks as context managers,
event listeners that record (fn, inputs, outputs), update() (a dict, as both versions return) and skip().
`components.IOComponent` is gradio 3's base class of input/output components (SD.Next checks it)."""

_context = []  # open blocks


class Block:
    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs
        self.children = []
        self.listeners = []  # (event, fn, inputs, outputs)
        self.elem_id = kwargs.get("elem_id")
        self.visible = kwargs.get("visible", True)
        if _context:
            _context[-1].children.append(self)

    def __enter__(self):
        _context.append(self)
        return self

    def __exit__(self, *exc):
        _context.pop()
        return False

    def _listen(self, event, fn=None, inputs=None, outputs=None, **kwargs):
        self.listeners.append((event, fn, inputs, outputs))
        return self

    def click(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._listen("click", fn, inputs, outputs, **kwargs)

    def change(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._listen("change", fn, inputs, outputs, **kwargs)

    def then(self, fn=None, inputs=None, outputs=None, **kwargs):
        return self._listen("then", fn, inputs, outputs, **kwargs)


class Component(Block):
    def __init__(self, value=None, *, label=None, **kwargs):
        super().__init__(**kwargs)
        self.value = value() if callable(value) else value
        self.label = label
        for key in ("minimum", "maximum", "step", "choices", "interactive"):
            if key in kwargs:
                setattr(self, key, kwargs[key])


class Checkbox(Component):
    def __init__(self, value=False, **kwargs):
        super().__init__(value=value, **kwargs)


class Slider(Component):
    def __init__(self, minimum=0, maximum=100, value=None, step=None, **kwargs):
        super().__init__(value=minimum if value is None else value, minimum=minimum, maximum=maximum, step=step, **kwargs)


class Dropdown(Component):
    def __init__(self, choices=None, value=None, **kwargs):
        super().__init__(value=value, choices=list(choices or []), **kwargs)


class Radio(Dropdown):
    pass


class Textbox(Component):
    def __init__(self, value="", **kwargs):
        super().__init__(value=value, **kwargs)


class HTML(Textbox):
    pass


class Markdown(Textbox):
    pass


class Button(Component):
    def __init__(self, value="Run", **kwargs):
        super().__init__(value=value, **kwargs)


class Row(Block):
    pass


class Column(Block):
    pass


class Group(Block):
    pass


class Blocks(Block):
    pass


class Accordion(Block):
    def __init__(self, label=None, open=True, **kwargs):
        super().__init__(**kwargs)
        self.label = label
        self.open = open


def update(**kwargs):
    return {"__type__": "update", **kwargs}


def skip():
    return update()


class components:  # noqa: N801 - the attribute path scripts use for type hints
    Component = Component
    IOComponent = Component


class blocks:  # noqa: N801
    Block = Block
