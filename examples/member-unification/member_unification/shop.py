"""The web shop's member list as a small REST API: `GET /members?limit=N&offset=M` answers
`{"items": [...], "next": URL or null}` from a JSON file (the shop's members as data.py made them).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["serve_shop"]


def serve_shop(members_file: Path, port: int = 8120) -> ThreadingHTTPServer:
    """Serve the members in `members_file` on 127.0.0.1:`port` (0: any free port) in a thread; returns the server."""
    members: list[dict[str, Any]] = json.loads(members_file.read_text("utf-8"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/members":
                self.send_error(404)
                return
            query = parse_qs(url.query)
            limit = min(int(query.get("limit", ["1000"])[0]), 10_000)
            offset = int(query.get("offset", ["0"])[0])
            page = members[offset : offset + limit]
            following = offset + limit < len(members)
            base = f"http://127.0.0.1:{self.server.server_address[1]}/members"
            body = json.dumps(
                {"items": page, "next": f"{base}?limit={limit}&offset={offset + limit}" if following else None},
                ensure_ascii=False,
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the example prints its own lines
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
