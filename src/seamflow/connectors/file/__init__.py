"""The `file` connector: CSV (UTF-8 or GBK), XLSX and JSON Lines files in a root folder.

`connector.py` holds the connector, `config.py` its settings and the root folder's path
checks, `inputs.py` the actions and feeds, `encoding.py` encoding detection, `reading.py`
resumable row reading, `workbook.py` XLSX, `writing.py` and `ledger.py` atomic, once-only
writes, `feeds.py` and `row_feed.py` the `files` and `rows` feeds, and `failure.py` the
classification of file system errors. See docs/howto/connectors/file.md.
"""

from __future__ import annotations

from seamflow.connectors.file.connector import FileConnector

__all__ = ["FileConnector"]
