"""Stand-in for backend/text_processing/emphasis.py."""


class Emphasis:
    name = "Original"


class EmphasisNone(Emphasis):
    name = "None"


def get_current_option(name):
    return {"None": EmphasisNone}.get(name, Emphasis)


def uses_emphasis(text):
    return "(" in text or "[" in text
