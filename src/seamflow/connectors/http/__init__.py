"""The `http` connector: calls any HTTP/JSON system, passing the idempotency key as a header.

`connector.py` holds the connector and its session, `config.py` the connection settings and
credentials, `inputs.py` the actions and their inputs, `response.py` reading and classifying
answers. See docs/howto/connectors/http.md.
"""

from __future__ import annotations

from seamflow.connectors.http.connector import HttpConnector

__all__ = ["HttpConnector"]
