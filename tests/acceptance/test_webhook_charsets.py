"""Webhook bodies in the charsets Chinese systems send: a declared GBK/GB2312/GB18030 body is decoded as
declared and its text stays intact through `seamflow runs show`; an undeclared non-UTF-8 body is a clear 400.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.runs import run_in_status
from tests.support.server import make_project, serve

KEEP = """
id: keep-contract
trigger: {webhook: {path: contracts}}
steps:
  - id: keep
    transform:
      customer: "{{ event.body.customer }}"
      note: "{{ event.body.note }}"
"""

# 张伟 and 合同签约 are in GB2312; 镕 is GBK only; 𠀀 (U+20000) needs GB18030's four-byte form.
BODIES = {
    "gb2312": {"customer": "张伟", "note": "合同签约，金额 19.90 元"},
    "GBK": {"customer": "朱镕基", "note": "已审核"},
    "gb18030": {"customer": "𠀀 测试", "note": "四字节字符"},
}


def runs_show(project: Path, run_id: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "seamflow", "runs", "show", run_id, "--json", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


async def post(client: httpx.AsyncClient, body: bytes, content_type: str) -> httpx.Response:
    return await client.post("/hooks/contracts", content=body, headers={"Content-Type": content_type})


async def test_a_declared_gbk_or_gb18030_body_is_accepted_and_its_chinese_text_is_intact(project_dir: Path) -> None:
    make_project(project_dir, {"keep": KEEP})
    async with serve(project_dir) as server, server.client() as client:
        run_ids = {}
        for charset, body in BODIES.items():
            encoded = json.dumps(body, ensure_ascii=False).encode(charset)
            answer = await post(client, encoded, f"application/json; charset={charset}")
            assert answer.status_code == 202, (charset, answer.text)
            run_ids[charset] = answer.json()["run_id"]
        for charset, run_id in run_ids.items():
            await run_in_status(client, run_id, "completed")
            printed = await asyncio.to_thread(runs_show, project_dir, run_id)
            assert BODIES[charset]["customer"] in printed, charset  # printed as text, not as \u escapes
            shown = json.loads(printed)
            assert shown["event"]["body"] == BODIES[charset], charset
            assert shown["steps"][0]["output"] == BODIES[charset], charset


async def test_an_undeclared_gbk_body_is_a_400_that_names_the_charset_problem(project_dir: Path) -> None:
    make_project(project_dir, {"keep": KEEP})
    async with serve(project_dir) as server, server.client() as client:
        gbk = json.dumps(BODIES["gb2312"], ensure_ascii=False).encode("gbk")
        answer = await post(client, gbk, "application/json")
        assert answer.status_code == 400, answer.text
        problem = answer.json()
        assert problem["code"] == "payload.encoding"
        assert "body is not valid UTF-8: byte 14" in problem["detail"]
        assert "declares no charset" in problem["detail"] and "charset=gbk" in problem["detail"]

        refused = await post(client, gbk, "application/json; charset=big5")
        assert refused.status_code == 415, refused.text
        assert refused.json()["code"] == "payload.charset"
        assert "charset 'big5' in Content-Type is not supported" in refused.json()["detail"]

        broken = await post(client, b'{"customer": "\x81"}', "application/json; charset=gbk")
        assert broken.status_code == 400, broken.text
        assert "body is not valid gbk (decoded as GB18030, its superset): byte 14" in broken.json()["detail"]
        assert (await client.get("/api/v1/runs", params={"flow": "keep-contract"})).json() == []
