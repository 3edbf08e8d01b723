"""Process logs in and out: OCEL 2.0 (JSON and SQLite) and XES flattened on an object type for
pm4py, Celonis and other tools; CSV and XES logs of other systems read as object-centric events.

Times are written in UTC with milliseconds (`2026-03-02T09:30:00.125+00:00`); names are UTF-8.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from seamflow import errors
from seamflow.insight.index import ProcessIndex
from seamflow.insight.model import Event, EventObject

__all__ = ["export_ocel_json", "export_ocel_sqlite", "export_xes", "read_csv_log", "read_xes_log"]

# The SQLite export reads each of these a chunk at a time (DuckDB streams them), so its memory
# stays flat however long the log.
_EVENT_ACTIVITIES = "SELECT DISTINCT a.name FROM events e JOIN activities a ON a.code = e.act ORDER BY a.name"
_EVENT_ROWS = (
    "SELECT 'e' || e.seq, a.name, e.ts_ms, e.resource FROM events e JOIN activities a ON a.code = e.act ORDER BY e.seq"
)
_EVENT_OBJECT_ROWS = (
    "SELECT 'e' || x.seq, o.id, coalesce(nullif(x.qualifier, ''), t.name) FROM e2o x"
    " JOIN objects o ON o.code = x.obj JOIN object_types t ON t.code = o.otype ORDER BY x.seq, o.code"
)
_OBJECT_ROWS = "SELECT o.id, t.name FROM objects o JOIN object_types t ON t.code = o.otype ORDER BY o.code"
_ATTRIBUTE_ROWS = (
    "SELECT o.id, t.name, a.name, a.value, e.ts_ms FROM object_attributes a JOIN events e ON e.seq = a.seq"
    " JOIN objects o ON o.code = a.obj JOIN object_types t ON t.code = o.otype ORDER BY a.obj, a.seq"
)
_LINKS = (
    "SELECT DISTINCT s.id, d.id, l.qualifier FROM o2o l"
    " JOIN objects s ON s.code = l.src JOIN objects d ON d.code = l.dst"
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


# Each is read a slice at a time (a range of seq, or of object codes): a slice's grouped relations
# are all DuckDB holds at once, so an export's memory stays flat however long the log.
_EVENTS_JSON = (
    "SELECT to_json({'id': 'e' || e.seq, 'type': a.name,"
    " 'time': strftime(epoch_ms(e.ts_ms), '%Y-%m-%dT%H:%M:%S.%g+00:00'),"
    " 'attributes': list_filter([{'name': 'resource', 'value': e.resource}], lambda x: x.value IS NOT NULL),"
    " 'relationships': coalesce(r.rels, [])}) FROM events e JOIN activities a ON a.code = e.act"
    " LEFT JOIN (SELECT x.seq, list({'objectId': o.id, 'qualifier': CASE WHEN x.qualifier = '' THEN t.name"
    " ELSE x.qualifier END} ORDER BY o.code) AS rels FROM e2o x JOIN objects o ON o.code = x.obj"
    " JOIN object_types t ON t.code = o.otype WHERE x.seq BETWEEN $lo AND $hi GROUP BY x.seq) r ON r.seq = e.seq"
    " WHERE e.seq BETWEEN $lo AND $hi ORDER BY e.seq"
)
_OBJECTS_JSON = (
    "SELECT to_json({'id': o.id, 'type': t.name, 'attributes': coalesce(v.attrs, []),"
    " 'relationships': coalesce(l.links, [])}) FROM objects o JOIN object_types t ON t.code = o.otype"
    " LEFT JOIN (SELECT a.obj, list({'name': a.name, 'time': strftime(epoch_ms(e.ts_ms),"
    " '%Y-%m-%dT%H:%M:%S.%g+00:00'), 'value': a.value} ORDER BY a.seq) AS attrs FROM object_attributes a"
    " JOIN events e ON e.seq = a.seq WHERE a.obj BETWEEN $lo AND $hi GROUP BY a.obj) v ON v.obj = o.code"
    " LEFT JOIN (SELECT src, list(DISTINCT {'objectId': d.id, 'qualifier': q.qualifier}) AS links FROM o2o q"
    " JOIN objects d ON d.code = q.dst WHERE q.src BETWEEN $lo AND $hi GROUP BY src) l ON l.src = o.code"
    " WHERE o.code BETWEEN $lo AND $hi ORDER BY o.code"
)
_TYPES_JSON = (
    "SELECT to_json({'name': t.name, 'attributes': coalesce((SELECT list(DISTINCT {'name': a.name, 'type': 'string'})"
    " FROM object_attributes a JOIN objects o ON o.code = a.obj WHERE o.otype = t.code), [])})"
    " FROM object_types t ORDER BY t.code"
)
_SLICE = 50_000
"""Events (by seq) or objects (by code) per slice of an OCEL JSON export."""


def export_ocel_json(index: ProcessIndex, path: Path, *, slice_size: int = _SLICE) -> int:
    """Write the whole log as OCEL 2.0 JSON, streamed: the log is read and written a slice at a time.

    Object ids are written as given; an object's attributes carry the time each value was seen.
    DuckDB renders each event and object as JSON; Python only joins the pieces.

    Args:
        index: the log.
        path: the file to write.
        slice_size: events (a range of seq) or objects (of codes) read at once; memory follows it.

    Returns:
        How many events were written.
    """
    types = [r[0] for r in index.query(_TYPES_JSON)]
    event_types = json.dumps(
        [
            {"name": a, "attributes": [{"name": "resource", "type": "string"}]}
            for a in sorted(set(index.activity_names().values()))
        ],
        ensure_ascii=False,
    )
    ((objects_lo, objects_hi),) = index.query("SELECT coalesce(min(code), 0), coalesce(max(code), -1) FROM objects")
    ((events_lo, events_hi),) = index.query("SELECT coalesce(min(seq), 0), coalesce(max(seq), -1) FROM events")
    written = [0]
    with path.open("w", encoding="utf-8") as f:

        def write(rows: list[tuple[Any, ...]]) -> None:
            f.write(("," if written[0] else "") + ",".join(r[0] for r in rows))
            written[0] += len(rows)

        f.write('{"objectTypes":[' + ",".join(types) + '],"eventTypes":' + event_types + ',"objects":[')
        for lo in range(objects_lo, objects_hi + 1, slice_size):
            index.each_chunk(_OBJECTS_JSON, write, params={"lo": lo, "hi": lo + slice_size - 1})
        f.write('],"events":[')
        written[0] = 0
        for lo in range(events_lo, events_hi + 1, slice_size):
            index.each_chunk(_EVENTS_JSON, write, params={"lo": lo, "hi": lo + slice_size - 1})
        f.write("]}")
    return written[0]


def export_ocel_sqlite(index: ProcessIndex, path: Path) -> int:
    """Write the whole log as an OCEL 2.0 SQLite database (the standard's tables; one table per
    event type and object type, mapped through `event_map_type` / `object_map_type`), streamed:
    the log is read and written a chunk at a time.

    Returns:
        How many events were written.
    """
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        with db:
            return _write_ocel_sqlite(db, index)
    except sqlite3.Error as exc:
        raise errors.StoreError(f"writing the OCEL database {path} failed: {exc}") from exc
    finally:
        db.close()


def _write_ocel_sqlite(db: sqlite3.Connection, index: ProcessIndex) -> int:
    db.executescript(
        "CREATE TABLE event (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);"
        "CREATE TABLE object (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);"
        "CREATE TABLE event_object (ocel_event_id TEXT, ocel_object_id TEXT, ocel_qualifier TEXT);"
        "CREATE TABLE object_object (ocel_source_id TEXT, ocel_target_id TEXT, ocel_qualifier TEXT);"
        "CREATE TABLE event_map_type (ocel_type TEXT, ocel_type_map TEXT);"
        "CREATE TABLE object_map_type (ocel_type TEXT, ocel_type_map TEXT);"
    )
    activities = [r[0] for r in index.query(_EVENT_ACTIVITIES)]
    event_table = {a: f"event_t{i}" for i, a in enumerate(activities)}
    db.executemany("INSERT INTO event_map_type VALUES (?, ?)", [(a, event_table[a][6:]) for a in activities])
    for a in activities:
        db.execute(f'CREATE TABLE "{event_table[a]}" (ocel_id TEXT PRIMARY KEY, ocel_time TIMESTAMP, resource TEXT)')
    written = [0]

    def events(rows: list[tuple[Any, ...]]) -> None:
        db.executemany("INSERT INTO event VALUES (?, ?)", [(eid, act) for eid, act, _, _ in rows])
        for a in {act for _, act, _, _ in rows}:
            db.executemany(
                f'INSERT INTO "{event_table[a]}" VALUES (?, ?, ?)',  # noqa: S608  # table names are generated
                [(eid, _iso(ms), res) for eid, act, ms, res in rows if act == a],
            )
        written[0] += len(rows)

    index.each_chunk(_EVENT_ROWS, events)
    index.each_chunk(_EVENT_OBJECT_ROWS, _inserting(db, "INSERT INTO event_object VALUES (?, ?, ?)"))
    types = index.object_types()
    object_table = {t: f"object_t{i}" for i, t in enumerate(types)}
    db.executemany("INSERT INTO object_map_type VALUES (?, ?)", [(t, object_table[t][7:]) for t in types])
    for t in types:
        db.execute(
            f'CREATE TABLE "{object_table[t]}" (ocel_id TEXT, ocel_time TIMESTAMP, ocel_changed_field TEXT,'
            " name TEXT, value TEXT)"
        )

    def objects(rows: list[tuple[Any, ...]]) -> None:
        db.executemany("INSERT INTO object VALUES (?, ?)", rows)
        for t in {otype for _, otype in rows}:
            db.executemany(
                f'INSERT INTO "{object_table[t]}" VALUES (?, ?, NULL, NULL, NULL)',  # noqa: S608
                [(oid, _iso(0)) for oid, otype in rows if otype == t],
            )

    def attributes(rows: list[tuple[Any, ...]]) -> None:
        for t in {otype for _, otype, *_ in rows}:
            db.executemany(
                f'INSERT INTO "{object_table[t]}" VALUES (?, ?, ?, ?, ?)',  # noqa: S608
                [(oid, _iso(ms), name, name, value) for oid, otype, name, value, ms in rows if otype == t],
            )

    index.each_chunk(_OBJECT_ROWS, objects)
    index.each_chunk(_ATTRIBUTE_ROWS, attributes)
    index.each_chunk(_LINKS, _inserting(db, "INSERT INTO object_object VALUES (?, ?, ?)"))
    return written[0]


def _inserting(db: sqlite3.Connection, sql: str) -> Callable[[list[tuple[Any, ...]]], None]:
    def insert(rows: list[tuple[Any, ...]]) -> None:
        db.executemany(sql, rows)

    return insert


def export_xes(index: ProcessIndex, object_type: str, path: Path) -> int:
    """Write the log flattened on one object type as XES: a trace per object, its events in order
    (timestamp, then ingest order), `concept:name`, `time:timestamp` (UTC, ms) and `org:resource`.

    Returns:
        How many traces were written.

    Raises:
        errors.NotFound: no event touched an object of the type (`insight.object_type_unknown`).
    """
    otype = index.object_type_code(object_type)
    if otype is None:
        raise errors.NotFound(
            f"no event touched an object of type {errors.redact(object_type)}; known types: "
            + (", ".join(index.object_types()) or "none yet"),
            code="insight.object_type_unknown",
        )
    rows = index.query(
        "SELECT o.id, a.name, s.ts_ms, s.resource FROM steps s JOIN objects o ON o.code = s.obj"
        " JOIN activities a ON a.code = s.act WHERE s.otype = ? ORDER BY o.id, s.ts_ms, s.seq",
        [otype],
    )
    traces = 0
    with path.open("w", encoding="utf-8") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1849-2016" xes.features="nested-attributes"'
            ' xmlns="http://www.xes-standard.org/">\n<extension name="Concept" prefix="concept"'
            ' uri="http://www.xes-standard.org/concept.xesext"/>\n<extension name="Time" prefix="time"'
            ' uri="http://www.xes-standard.org/time.xesext"/>\n<extension name="Organizational" prefix="org"'
            ' uri="http://www.xes-standard.org/org.xesext"/>\n'
        )
        case = None
        for oid, activity, ms, resource in rows:
            if oid != case:
                if case is not None:
                    f.write("</trace>\n")
                f.write(f'<trace><string key="concept:name" value={quoteattr(oid)}/>\n')
                case, traces = oid, traces + 1
            who = "" if resource is None else f'<string key="org:resource" value={quoteattr(resource)}/>'
            f.write(
                f'<event><string key="concept:name" value={quoteattr(activity)}/>'
                f'<date key="time:timestamp" value="{_iso(ms)}"/>{who}</event>\n'
            )
        if case is not None:
            f.write("</trace>\n")
        f.write("</log>\n")
    return traces


def read_csv_log(
    path: Path,
    *,
    case: str,
    activity: str,
    timestamp: str,
    object_type: str,
    resource: str | None = None,
    first_seq: int = 1,
) -> list[Event]:
    """Events of a CSV event log (one row per event, UTF-8 with a header), in file order.

    Naive timestamps are read as UTC; `seq` numbers the rows from `first_seq` so that rows of the
    same instant keep the file's order. Other columns become attributes of the case object.

    Raises:
        errors.InvalidInput: a named column is missing, or a time cannot be read (`insight.log_invalid`).
    """
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (case, activity, timestamp) if c not in (reader.fieldnames or [])]
        if missing:
            raise errors.InvalidInput(
                f"{path}: no column {', '.join(missing)}; the header has {', '.join(reader.fieldnames or [])}",
                code="insight.log_invalid",
            )
        extra = [c for c in reader.fieldnames or [] if c not in (case, activity, timestamp, resource)]
        events = []
        for line, row in enumerate(reader, start=2):
            attributes = {c: row[c] for c in extra if row.get(c)}
            events.append(
                Event(
                    first_seq + line - 2,
                    row[activity],
                    _ms(row[timestamp], f"{path}:{line} {timestamp}"),
                    (EventObject(object_type, row[case], attributes=attributes),),
                    resource=(row.get(resource) or None) if resource else None,
                )
            )
        return events


def read_xes_log(path: Path, *, object_type: str, first_seq: int = 1) -> list[Event]:
    """Events of an XES log, each trace an object of `object_type` (its `concept:name` the id).

    Raises:
        errors.InvalidInput: not XES, or an event without a name or a time (`insight.log_invalid`).
    """
    return list(_xes_events(path, object_type, first_seq))


def _xes_events(path: Path, object_type: str, seq: int) -> Iterator[Event]:
    case = ""
    depth_in_event = 0
    try:
        # The standard library's expat refuses external entities and entity expansion bombs (Python ≥ 3.11).
        for kind, element in ElementTree.iterparse(path, events=("start", "end")):  # noqa: S314
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "event":
                depth_in_event += 1 if kind == "start" else -1
            if kind == "start":
                continue
            if tag == "string" and element.get("key") == "concept:name" and depth_in_event == 0:
                case = element.get("value") or ""  # the trace's own name: the case id
            elif tag == "event":
                keys = {c.get("key"): c.get("value") for c in element}
                name, at = keys.get("concept:name"), keys.get("time:timestamp")
                if name is None or at is None:
                    raise errors.InvalidInput(
                        f"{path}: an event of trace {errors.redact(case)} has no concept:name or time:timestamp",
                        code="insight.log_invalid",
                    )
                yield Event(
                    seq,
                    name,
                    _ms(at, f"{path} trace {case}"),
                    (EventObject(object_type, case),),
                    resource=keys.get("org:resource"),
                )
                seq += 1
                element.clear()
            elif tag == "trace":
                element.clear()
    except ElementTree.ParseError as exc:
        raise errors.InvalidInput(f"{path}: not an XES document: {exc}", code="insight.log_invalid") from exc


def _ms(text: str, where: str) -> int:
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidInput(
            f"{where}: got {errors.redact(text)}; expected an ISO 8601 time such as 2026-03-02T09:30:00.125+08:00",
            code="insight.log_invalid",
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # naive times are UTC, as pm4py reads them
    return round(at.timestamp() * 1000)
