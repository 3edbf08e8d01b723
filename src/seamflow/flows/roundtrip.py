"""Writing a flow changed in the console back into its YAML file, the way an engineer would have.

The flow's new content (plain data, as `load.parse_yaml` reads it) is applied onto the file's text
with ruamel.yaml's round-trip mode: only the values that differ are replaced; comments, key order,
quoting, flow-style `{…}` mappings and indentation of everything else are kept, so a `git diff`
shows only what changed. A version of the text (`source_etag`) lets two editors find out that they
started from different texts instead of overwriting each other.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import itertools
from typing import Final, cast

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.util import load_yaml_guess_indent

from seamflow import errors
from seamflow.ids import Json

__all__ = ["KEY_ORDER", "apply_to_source", "diff_sources", "new_source", "source_etag"]

KEY_ORDER: Final = ("id", "name", "description", "trigger", "when", "steps", "on_error")
"""The order of a flow's top-level keys in a new file, as in the examples and the tutorial."""
_WIDTH: Final = 4096
"""Long enough that ruamel never re-wraps a line the engineer wrapped (or did not)."""
_QUOTED_START: Final = frozenset("{[*&!%@`'\"|>")
_STYLES: Final = (DoubleQuotedScalarString, SingleQuotedScalarString, LiteralScalarString, FoldedScalarString)


def source_etag(text: str) -> str:
    """The version of a flow file's text that a save must name in `If-Match` (a strong ETag, quoted).

    It is the flow's version (`load.flow_version`: SHA-256 of the UTF-8 bytes, 16 hex digits).
    """
    return '"' + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16] + '"'


def _yaml(mapping: int = 2, sequence: int = 2, offset: int = 0) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = _WIDTH
    yaml.allow_duplicate_keys = False
    yaml.indent(mapping=mapping, sequence=max(sequence, offset + 2), offset=offset)
    return yaml


def _dump(yaml: YAML, document: object) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def apply_to_source(text: str, data: Json, *, filename: str = "flow.yaml") -> str:
    """Return `text` changed so that it reads as `data`, keeping everything that did not change.

    Mappings are updated key by key (new keys are added at the end, removed keys dropped with
    their comments); lists of steps are matched by step `id`, other lists by position; a changed
    text keeps the quoting style of the value it replaces.

    Args:
        text: the flow file as it is now.
        data: the flow as it should read (plain data).
        filename: the name used in problems.

    Raises:
        errors.FlowInvalid: `text` is not YAML ruamel can read (`seamflow flow validate` says more).
    """
    try:
        _, sequence, offset = load_yaml_guess_indent(text, yaml=_yaml())
        yaml = _yaml(_mapping_indent(text), sequence or 2, offset or 0)
        document = yaml.load(text)
    except Exception as exc:  # ruamel's errors share no public base; each is reported as a problem
        where = errors.Location(filename, *_mark(exc))
        problem = errors.Problem(where, f"cannot read the file: {_reason(exc)}", "valid YAML")
        raise errors.FlowInvalid([problem]) from None
    if not isinstance(document, CommentedMap) or not isinstance(data, dict):
        return new_source(data)
    before = _dump(yaml, document)
    _update_map(document, data)
    after = _dump(yaml, document)
    return text if after == before else _merge_lines(before, text, after)


def _mapping_indent(text: str) -> int:
    """The indentation of nested mappings: the step from a `key:` line to a nested `key:` line."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in itertools.pairwise(lines):
        if line.rstrip().endswith(":") and not following.lstrip().startswith("-"):
            step = (len(following) - len(following.lstrip())) - (len(line) - len(line.lstrip(" -")))
            if step > 0:
                return step
    return 2


def _anchors(base: list[str], other: list[str]) -> dict[int, int]:
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return {a + k: b + k for a, b, size in matcher.get_matching_blocks() for k in range(size)}


def _merge_lines(base_text: str, ours_text: str, theirs_text: str) -> str:
    """A three-way merge by lines: `base` is ruamel's rendering of the file before the change,
    `ours` the file as written (its own line breaks and spacing), `theirs` ruamel's rendering after.

    Between lines all three share, a part only `theirs` changed takes theirs; a part only the
    file's formatting changed keeps the file's; where both differ, theirs is taken (that part is
    written the way ruamel writes it, the rest of the file is untouched).
    """
    base, ours, theirs = (t.splitlines(keepends=True) for t in (base_text, ours_text, theirs_text))
    to_ours, to_theirs = _anchors(base, ours), _anchors(base, theirs)
    shared = [(b, to_ours[b], to_theirs[b]) for b in sorted(to_ours.keys() & to_theirs.keys())]
    shared = [s for i, s in enumerate(shared) if i == 0 or (s[1] > shared[i - 1][1] and s[2] > shared[i - 1][2])]
    result: list[str] = []
    previous = (-1, -1, -1)
    for anchor in [*shared, (len(base), len(ours), len(theirs))]:
        b_part = base[previous[0] + 1 : anchor[0]]
        o_part = ours[previous[1] + 1 : anchor[1]]
        t_part = theirs[previous[2] + 1 : anchor[2]]
        result += o_part if t_part == b_part else t_part
        if anchor[1] < len(ours):
            result.append(ours[anchor[1]])
        previous = anchor
    return "".join(result)


def new_source(data: Json) -> str:
    """A new flow file for `data`: top-level keys in `KEY_ORDER`, two-space block style."""
    if isinstance(data, dict):
        ordered = {k: data[k] for k in KEY_ORDER if k in data} | {k: v for k, v in data.items() if k not in KEY_ORDER}
        data = cast(Json, ordered)
    return _dump(_yaml(2, 4, 2), _fresh(data))


def diff_sources(saved: str, theirs: str, *, saved_name: str = "saved", their_name: str = "yours") -> str:
    """A unified diff of `saved` → `theirs`: what saving theirs over the saved file would change."""
    lines = difflib.unified_diff(
        saved.splitlines(keepends=True), theirs.splitlines(keepends=True), saved_name, their_name
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _mark(exc: Exception) -> tuple[int | None, int | None]:
    mark = getattr(exc, "problem_mark", None)
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "problem", None) or type(exc).__name__)


def _fresh(value: Json) -> object:
    """Plain data as ruamel nodes; a text over several lines is written as a `|` block."""
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = _fresh(item)
        return mapping
    if isinstance(value, list):
        return CommentedSeq(_fresh(item) for item in value)
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    if isinstance(value, str) and value[:1] in _QUOTED_START:
        return DoubleQuotedScalarString(value)  # "{{ … }}" as engineers write it, not '{{ … }}'
    return value


def _same(old: object, new: Json) -> bool:
    """Equal as data: `1` and `1.0` or `true` and `1` are not the same value in a flow file."""
    if isinstance(new, bool) or isinstance(old, bool):
        return type(old) is type(new) and old == new
    if isinstance(new, str):
        return isinstance(old, str) and str(old) == new
    if isinstance(new, (int, float)) and isinstance(old, (int, float)):
        return type(new) is type(old.real) and old == new
    return old == new


def _replacement(old: object, new: Json) -> object:
    """The new value as a node, in the old value's style where both are text."""
    if isinstance(new, str) and isinstance(old, str):
        for style in _STYLES:
            if isinstance(old, style):
                if style in (LiteralScalarString, FoldedScalarString) and "\n" not in new.rstrip("\n"):
                    return new  # a block scalar for one line would read oddly; write it plain
                return style(new)
    if isinstance(new, dict) and isinstance(old, CommentedMap):
        _update_map(old, new)
        return old
    if isinstance(new, list) and isinstance(old, CommentedSeq):
        _update_seq(old, new)
        return old
    return _fresh(new)


def _update_map(node: CommentedMap, data: dict[str, Json]) -> None:
    for key in [k for k in node if k not in data]:
        del node[key]
    for key, value in data.items():
        if key not in node:
            node[key] = _fresh(value)
            continue
        old = node[key]
        if _same(old, value):
            continue
        replaced = _replacement(old, value)
        if replaced is not old:
            node[key] = replaced


def _step_id(item: object) -> object:
    return item.get("id") if isinstance(item, dict) else None


def _update_seq(node: CommentedSeq, data: list[Json]) -> None:
    ids = [_step_id(item) for item in node]
    if all(isinstance(i, str) for i in ids) and all(isinstance(_step_id(d), str) for d in data):
        by_id = {_step_id(item): item for item in node}
        _keep_matching(node, [by_id.get(_step_id(item)) for item in data], data)
        return
    if len(node) > len(data):
        del node[len(data) :]
    for index, value in enumerate(data):
        if index >= len(node):
            node.append(_fresh(value))
        elif not _same(node[index], value):
            replaced = _replacement(node[index], value)
            if replaced is not node[index]:
                node[index] = replaced


def _keep_matching(node: CommentedSeq, olds: list[object], data: list[Json]) -> None:
    """Rebuild a list of steps in `data`'s order, reusing (and updating) the node of each kept step.

    Steps that stay in place keep their comments; removed steps go with theirs.
    """
    kept = [old for old in olds if old is not None]
    order_is_same = kept == [item for item in node if item in kept]
    if order_is_same and len(kept) == len(node) and len(olds) == len(node):
        for old, value in zip(olds, data, strict=True):
            _replacement(old, value)
        return
    pairs = zip(olds, data, strict=True)
    items = [(_replacement(old, value) if old is not None else _fresh(value)) for old, value in pairs]
    comments = node.ca.items
    first_ids = {id(item): index for index, item in enumerate(node)}
    moved = {i: comments.get(first_ids[id(item)]) for i, item in enumerate(items) if id(item) in first_ids}
    node.clear()
    comments.clear()
    node.extend(items)
    for index, comment in moved.items():
        if comment is not None:
            comments[index] = comment
