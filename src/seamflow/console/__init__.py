"""The web console: the pages and assets a browser loads, served beside the REST API they call.

The console is plain files (HTML, ES modules, CSS, one message catalogue per language) under
`static/`, shipped in the wheel; there is no build step. It holds no logic the API does not
enforce: pages call `/api/v1` with the session cookie and hide what the user's scopes forbid.
"""

from __future__ import annotations

from seamflow.console.assets import LANGUAGES, PREFIX, STATIC, mount

__all__ = ["LANGUAGES", "PREFIX", "STATIC", "mount"]
