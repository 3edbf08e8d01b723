"""The `openapi` connector: each operation of an OpenAPI 3.0/3.1 document as an action, inputs checked first.

`connector.py` holds the connector, `source.py` reading the document (a file, `.gz` too, or a
URL), `document.py` its operations, `actions.py` the actions (and what `flow validate` checks),
`servers.py` where the API is, `schemas.py` checking inputs, `request.py` building requests, `auth.py` the security
requirements, `signin.py` oauth2 and openIdConnect sign-in, `paging.py` pagination, `feed.py`
the `list` poll feed. See docs/howto/connectors/openapi.md.
"""

from __future__ import annotations

from seamflow.connectors.openapi.connector import OpenApiConnector

__all__ = ["OpenApiConnector"]
