"""How much a browser downloads to open the console: compressed bytes of the first load.

Usage: .venv/bin/python benchmarks/console_assets.py

The first load is what a browser fetches to show the sign-in page and then the overview:
index.html, the stylesheet, main.js with every module it imports statically, one message
catalogue, and the sign-in and overview pages with their imports. Each file is counted as the
console serves it: gzip at level 9 (Starlette's GZipMiddleware) from 512 bytes up, as is below.
`editor_page` is what the flow editor adds when it is opened (its modules and stylesheet are
never part of the first load). `all_assets` is every file of the console, an upper bound. The
target (issue 17) is < 500 KB.
Results go to benchmarks/results/console-assets-latest.json.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from seamflow import console

MINIMUM_GZIP_SIZE = 512  # the console's GZipMiddleware(minimum_size=512)
IMPORT = re.compile(r"""(?:import|from)\s*\(?\s*["'](\.{1,2}/[^"']+\.js)["']""")


def served_size(path: Path) -> int:
    raw = path.read_bytes()
    return len(gzip.compress(raw, compresslevel=9)) if len(raw) >= MINIMUM_GZIP_SIZE else len(raw)


def static_imports(module: Path, seen: set[Path]) -> set[Path]:
    """`module` and every module it imports with a static `import … from` (not `import()`)."""
    if module in seen:
        return seen
    seen.add(module)
    for line in module.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("import ", "export ")) and " from " in line:
            for target in IMPORT.findall(line):
                static_imports((module.parent / target).resolve(), seen)
    return seen


def main() -> None:
    static = console.STATIC.resolve()
    first: set[Path] = {static / "index.html", static / "css" / "console.css", static / "i18n" / "zh-CN.json"}
    for entry in ("main.js", "pages/signin.js", "pages/overview.js"):
        static_imports(static / "js" / entry, first)
    editor = static_imports(static / "js" / "pages" / "editor.js", {static / "css" / "editor.css"}) - first
    everything = [p for p in static.rglob("*") if p.is_file()]
    result = {
        "first_load_bytes": sum(served_size(p) for p in first),
        "first_load_files": sorted(str(p.relative_to(static)) for p in first),
        "editor_page_bytes": sum(served_size(p) for p in editor),
        "editor_page_files": sorted(str(p.relative_to(static)) for p in editor),
        "all_assets_bytes": sum(served_size(p) for p in everything),
        "all_assets_uncompressed_bytes": sum(p.stat().st_size for p in everything),
        "all_assets_files": len(everything),
        "target_bytes": 500_000,
    }
    out = Path(__file__).parent / "results" / "console-assets-latest.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
