"""What following secrets through expressions costs a render: tracking on, side by side with tracking off.

Renders a step input of an order flow (about 20 fields, filters, `~`, a slice, a loop) from a
realistic event, once without secrets and once with a Basic header and a signature built from
secrets, with secret tracking as shipped and with `values.tracked` replaced by the identity (the
peer: what a render cost before tracking, in the same process and run). Prints and saves the
median microseconds per render and the ratios to `benchmarks/results/secret_tracking.json`.

    .venv/bin/python benchmarks/secret_tracking.py [--rounds 15] [--renders 400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from seamflow.flows import expressions
from seamflow.flows import values as flow_values

EVENT = {
    "body": {
        "order_no": "SO-2026-120731",
        "customer": {"name": "广州云帆贸易有限公司", "contact": "王芳", "mobile": "+86 139 1234 5678"},
        "lines": [
            {"sku": f"SKU-{i:04d}", "name": f"工业传感器 {i} 型", "qty": i % 5 + 1, "amount": i * 37}
            for i in range(1, 21)
        ],
        "currency": "CNY",
        "paid_at": "2026-12-07T09:30:00+08:00",
    }
}
PLAIN = {
    "path": "/orders/{{ event.body.order_no | lower }}",
    "json": {
        "number": "{{ event.body.order_no }}",
        "customer": "{{ event.body.customer.name }}",
        "mobile": "{{ event.body.customer.mobile | phone_cn }}",
        "prefix": "{{ event.body.order_no[:2] }}",
        "total": "{{ event.body.lines | sum(attribute='amount') }}",
        "skus": "{{ event.body.lines | map(attribute='sku') | join(',') }}",
        "summary": "{% for l in event.body.lines %}{{ l.sku }}x{{ l.qty }};{% endfor %}",
        "note": "{{ event.body.customer.contact ~ ' ' ~ event.body.currency }}",
    },
}
WITH_SECRETS = {
    **PLAIN,
    "headers": {
        "Authorization": "Basic {{ ('zhang.wei:' ~ secrets.crm) | b64encode }}",
        "X-Sign": "{{ (event.body.order_no ~ secrets.shop) | sha256 | upper }}",
    },
}


def per_render_us(template: expressions.Template, context: dict[str, object], renders: int) -> float:
    start = time.perf_counter()
    for _ in range(renders):
        template.render(context)
    return (time.perf_counter() - start) / renders * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--renders", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "secret_tracking.json")
    args = parser.parse_args()
    secrets = expressions.Secrets({"crm": "Crm-Bench-Pa55word", "shop": "Shop-Bench-Key-2026"})
    context = {"event": EVENT, "secrets": secrets}
    cases = {"plain": expressions.Template.compile(PLAIN), "with_secrets": expressions.Template.compile(WITH_SECRETS)}
    tracked = flow_values.tracked
    untracked: Callable[..., object] = lambda result, *inputs: result  # noqa: E731
    samples: dict[str, list[float]] = {f"{case}_{mode}": [] for case in cases for mode in ("tracking", "untracked")}
    for _ in range(args.rounds):  # interleaved, so both modes see the same load on a busy machine
        for mode, function in (("tracking", tracked), ("untracked", untracked)):
            flow_values.tracked = function  # type: ignore[assignment]
            for case, template in cases.items():
                samples[f"{case}_{mode}"].append(per_render_us(template, context, args.renders))
    flow_values.tracked = tracked
    medians = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    report = {
        "median_us_per_render": medians,
        "ratio_tracking_to_untracked": {
            case: round(medians[f"{case}_tracking"] / medians[f"{case}_untracked"], 3) for case in cases
        },
        "rounds": args.rounds,
        "renders_per_round": args.renders,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
