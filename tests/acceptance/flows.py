"""Flow files used by the acceptance tests."""

from __future__ import annotations


def sink_connection(url: str, *, concurrency: int = 32, timeout: str = "5s") -> str:
    return f"""
sink:
  connector: http
  base_url: {url}
  concurrency: {concurrency}
  timeout: {timeout}
"""


FORWARD = """
id: forward-orders
trigger:
  webhook:
    path: orders
    dedupe_key: "{{ event.body.order_no }}"
steps:
  - id: order
    transform:
      number: "{{ event.body.order_no }}"
      amount_cents: "{{ event.body.amount | cents }}"
      customer: "{{ event.body.customer }}"
  - id: post
    action: sink.post
    with:
      path: /orders
      json: "{{ steps.order }}"
    retry: {attempts: 20, backoff: exponential, initial_delay: 100ms, max_delay: 1s}
on_error: dead_letter
"""
