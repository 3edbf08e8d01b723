"""The `openapi` connector: each operation of an OpenAPI 3.0/3.1 document as an action, inputs checked first.

`connector.py` holds the connector, `document.py` reading the document into operations,
`schemas.py` checking inputs, `request.py` building requests, `auth.py` the security
schemes, `paging.py` pagination, `feed.py` the `list` poll feed. See docs/howto/connectors/openapi.md.
"""

from __future__ import annotations

from seamflow.connectors.openapi.connector import OpenApiConnector

__all__ = ["OpenApiConnector"]
