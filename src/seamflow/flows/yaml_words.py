"""PyYAML's syntax errors in plain words: what is wrong at the position, and what would be right.

PyYAML says `expected <block end>, but found '<block mapping start>'`; a person needs "this
line is indented differently from the lines of its block". The common mistakes in flow files
get a sentence each; anything else keeps PyYAML's words with its `<token>` jargon spelled out.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["plain_yaml_problem"]

_TOKENS = {
    "<block end>": "the end of the indented block",
    "<block mapping start>": "a new key: value entry",
    "<block sequence start>": "a new - list item",
    "<scalar>": "a value",
    "<stream end>": "the end of the file",
    "<document start>": "a new document",
    "<flow mapping end>": "}",
    "<flow sequence end>": "]",
    "'?'": "a key",
    "'-'": "a - list item",
}
_CLOSERS = {"flow mapping": ("{", "}"), "flow sequence": ("[", "]")}


def plain_yaml_problem(exc: yaml.MarkedYAMLError, start: tuple[int, int] | None) -> tuple[str, str]:
    """Return (problem, expected) for a PyYAML syntax error, in plain words.

    Args:
        exc: the parser's or scanner's error.
        start: line and column of `exc.context_mark` (where the construct began), if any.
    """
    problem, context = exc.problem or "", exc.context or ""
    at = f" at {start[0]}:{start[1]}" if start else ""
    if "mapping values are not allowed here" in problem:
        return (
            "a ': ' inside a value: YAML reads it as the start of a mapping",
            "the value in quotes, e.g. transform: 'a: b'",
        )
    if "cannot start any token" in problem and "\\t" in problem:
        return "a tab character: YAML indents with spaces only", "spaces instead of the tab"
    if "found unknown escape character" in problem:
        escape = problem.removeprefix("found unknown escape character ")
        return (
            f"an unknown escape in a double-quoted text{at} ({escape})",
            "single quotes around the text, or \\\\ for a backslash",
        )
    if "quoted scalar" in context and "end of stream" in problem:
        return f"the quote opened{at} is never closed", "a closing quote at the end of the text"
    if "another document" in problem:
        return "a second document (after ---): a flow file holds one flow", "one flow per file"
    if "could not find expected ':'" in problem:
        return f"the line{at} has no ':' after its key", "key: value, or a - list item"
    for name, (opening, closing) in _CLOSERS.items():
        if name in context:
            return (
                f"the {opening} opened{at} is not closed before this point",
                f"a , between items or a closing {closing}",
            )
    if "<block end>" in problem and ("block mapping" in context or "block collection" in context):
        return (
            f"this line is indented differently from the lines of its block (which starts{at})",
            "the same indentation, in spaces, as the other entries of the block",
        )
    return _spelled_out(problem or context, context if problem else "", at), "valid YAML"


def _spelled_out(problem: str, context: str, at: str) -> str:
    for token, words in _TOKENS.items():
        problem = problem.replace(token, words)
    problem = re.sub(r"'<([a-z ]+)>'", r"\1", problem)
    return f"invalid YAML: {problem}" + (f" ({context}{at})" if context else "")
