"""The rule every name in a network or hardware file follows, so that names stay readable in reports and in
one-line error messages."""

from __future__ import annotations

MAX_NAME_LENGTH = 200
"""Names appear in every report and error line; a longer one is a mistake."""


def text_problem(name: str) -> str | None:
    """What is wrong with a name as text, or None: it must be visible (not only spaces, no control
    characters, which would break the one-line error messages it appears in) and short."""
    if not name.strip() or not name.isprintable():
        return f"a name needs a visible character and no control characters, got {name[:MAX_NAME_LENGTH]!r}"
    if len(name) > MAX_NAME_LENGTH:
        return f"a name has at most {MAX_NAME_LENGTH} characters, got {len(name):,}"
    return None


def name_problem(name: str) -> str | None:
    """What is wrong with a layer, block or block-instance name, or None: the rule every such name follows.

    Visible, short text (:func:`text_problem`), without '.' (which joins the parts of a generated
    name: ``stage1.block2.dw``), and not ``input`` (the network's input).
    """
    if problem := text_problem(name):
        return problem
    if "." in name or name == "input":
        return f"names are without '.' and not 'input': {name!r}"
    return None
