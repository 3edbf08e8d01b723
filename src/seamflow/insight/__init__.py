"""Process insight: the event log as an object-centric log, process maps, KPIs, OCEL/XES exchange.

Insight reads only the store's event log (DESIGN.md): `activities.to_event` turns its rows into
object-centric events, a `ProcessIndex` keeps them queryable in DuckDB as they are appended, and
maps, KPIs and exports are computed from the index. See docs/howto/insight.md.
"""

from __future__ import annotations

from seamflow.insight.activities import ENGINE_ACTIVITIES, step_systems, to_event
from seamflow.insight.alerts import AlertMemory, Firing, Notifications, evaluate_alerts
from seamflow.insight.conformance import Conformance, Deviation, check_conformance, designed_path
from seamflow.insight.connector import InsightConnector
from seamflow.insight.diagnosis import Diagnosis, Finding, diagnose
from seamflow.insight.exchange import export_ocel_json, export_ocel_sqlite, export_xes, read_csv_log, read_xes_log
from seamflow.insight.index import ProcessIndex
from seamflow.insight.kpi import AlertRule, Kpi, KpiFile, KpiResult, compute_kpi, load_kpis
from seamflow.insight.model import Event, EventObject, ObjectLink, parse_objects
from seamflow.insight.process_map import CaseFilter, Edge, Node, ProcessMap, Variant, discover_map
from seamflow.insight.render import diagnosis_html, map_html, map_svg
from seamflow.insight.service import Insight
from seamflow.insight.upkeep import Upkeep, keep_current
from seamflow.insight.value import WorkSaved, work_saved

__all__ = [
    "ENGINE_ACTIVITIES",
    "AlertMemory",
    "AlertRule",
    "CaseFilter",
    "Conformance",
    "Deviation",
    "Diagnosis",
    "Edge",
    "Event",
    "EventObject",
    "Finding",
    "Firing",
    "Insight",
    "InsightConnector",
    "Kpi",
    "KpiFile",
    "KpiResult",
    "Node",
    "Notifications",
    "ObjectLink",
    "ProcessIndex",
    "ProcessMap",
    "Upkeep",
    "Variant",
    "WorkSaved",
    "check_conformance",
    "compute_kpi",
    "designed_path",
    "diagnose",
    "diagnosis_html",
    "discover_map",
    "evaluate_alerts",
    "export_ocel_json",
    "export_ocel_sqlite",
    "export_xes",
    "keep_current",
    "load_kpis",
    "map_html",
    "map_svg",
    "parse_objects",
    "read_csv_log",
    "read_xes_log",
    "step_systems",
    "to_event",
    "work_saved",
]
