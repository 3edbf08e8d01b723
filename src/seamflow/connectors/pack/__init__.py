"""The connector pack that ships with Seamflow: declarative connector files for the systems Chinese companies run.

DingTalk (`dingtalk_app`), WeCom (`wecom_app`), Feishu (`feishu_app`) and Kingdee K/3 Cloud
(`kingdee_k3cloud`), one YAML file each, named after its kind. They are plain connector files,
read by the same loader as a project's `connectors/*.yaml` and a published pack's, but only when
a connection first uses their kind: a project that uses none of them never reads them. A
project's own file of the same kind replaces the shipped one (to adapt it). See
docs/howto/declarative-connectors.md#the-pack-that-ships-with-seamflow.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACK_FILES"]

PACK_FILES: dict[str, Path] = {path.stem: path for path in sorted(Path(__file__).parent.glob("*.yaml"))}
"""The shipped connector files by kind."""
