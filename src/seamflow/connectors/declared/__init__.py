"""Declarative connectors: an HTTP/JSON system described in one YAML file instead of Python.

See docs/howto/declarative-connectors.md. `ConnectorFile` is the file's shape (its JSON Schema:
`connector_file_schema`), `connector_class` the connector a file declares.
"""

from __future__ import annotations

from seamflow.connectors.declared.connector import DeclaredConnector, connector_class
from seamflow.connectors.declared.spec import ConnectorFile, connector_file_schema

__all__ = ["ConnectorFile", "DeclaredConnector", "connector_class", "connector_file_schema"]
