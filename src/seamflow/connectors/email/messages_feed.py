"""The `messages` poll feed: each new mail of an IMAP folder, once, identified by UIDVALIDITY and UID.

IMAP numbers the mails of a folder with UIDs that only grow, valid as long as the folder's
UIDVALIDITY stays the same. The cursor is `{uidvalidity, last_uid}`; a poll reads the mails
with a UID above `last_uid`, oldest first. Each item's key is `folder:uidvalidity:uid`, so a
mail delivered again (a crash before the cursor was stored) is a duplicate.

Mails are read with `BODY.PEEK[]`, which leaves them unread. `mark_seen` and `move_to` are
applied by `Batch.ack`, after the engine has committed the events; the cursor also remembers
the UIDs of the last batch (`ack_from`), and the next poll applies them again, so an ack lost
to a crash or a network failure is still done (both are idempotent at the server).

When the folder's UIDVALIDITY changes (a restored or migrated mailbox, a folder deleted and
made again), the old UIDs mean nothing: the feed logs a warning and continues after the
folder's newest mail, delivering nothing that was there already (no flood of duplicates
under new keys). Mail that arrived between the last poll and the change is not delivered.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seamflow import errors
from seamflow.connectors.base import Feed, Item
from seamflow.connectors.email.imap import ImapSession, Mailbox, folder_name, imap_session, select
from seamflow.connectors.email.received import AttachmentPolicy, received_body
from seamflow.ids import Json

__all__ = ["FEEDS", "MessagesFeedInput", "MessagesPoll", "Polled", "acknowledge", "poll_messages"]

log = logging.getLogger("seamflow.connectors.email")

_FETCH_CHUNK = 20
"""Mails fetched per FETCH command: few round trips, bounded replies."""
_META = re.compile(rb"UID (\d+)|RFC822\.SIZE (\d+)|INTERNALDATE \"([^\"]+)\"")


class MessagesFeedInput(BaseModel):
    """The `with:` settings of a `poll` trigger on the `messages` feed."""

    model_config = ConfigDict(extra="forbid")
    folder: str | None = Field(None, min_length=1)
    """The folder to read; by default the connection's `imap.folder` (INBOX)."""
    start: Literal["beginning", "now"] = "beginning"
    """`beginning`: the first poll delivers every mail already in the folder; `now`: none, only later ones."""
    mark_seen: bool = False
    """Mark each delivered mail as read (\\Seen), after its event is committed."""
    move_to: str | None = Field(None, min_length=1)
    """Move each delivered mail to this folder (made if missing), after its event is committed."""
    attachments: Literal["describe", "include"] = "describe"
    """`describe`: name, content type and size of each attachment; `include`: also its content (base64)."""
    max_attachment_bytes: int = Field(5_000_000, ge=0, le=50_000_000)
    """With `include`: larger attachments are described only (`content: null`, `is_truncated: true`)."""
    max_batch_bytes: int = Field(50_000_000, ge=1_000)
    """Stop a poll once its mails add up to this size (at least one mail is read); the rest come at once after."""

    @model_validator(mode="after")
    def _move_elsewhere(self) -> MessagesFeedInput:
        if self.move_to is not None and self.move_to == self.folder:
            raise ValueError("move_to must be another folder than the one read")
        return self

    @property
    def needs_ack(self) -> bool:
        """True if delivered mails are changed at the server (marked read or moved)."""
        return self.mark_seen or self.move_to is not None


FEEDS: dict[str, Feed] = {
    "messages": Feed(
        "messages",
        MessagesFeedInput,
        mode="poll",
        description="New mails of an IMAP folder, each once (by UIDVALIDITY and UID), oldest first.",
    )
}


@dataclass(frozen=True, slots=True)
class _Cursor:
    uidvalidity: int
    last_uid: int
    ack_from: int | None = None
    """UIDs `ack_from..last_uid` were the last batch: mark or move them again (idempotent)."""

    def to_json(self) -> Json:
        cursor: dict[str, Json] = {"uidvalidity": self.uidvalidity, "last_uid": self.last_uid}
        if self.ack_from is not None:
            cursor["ack_from"] = self.ack_from
        return cursor

    @classmethod
    def from_json(cls, cursor: Json, where: str) -> _Cursor | None:
        if cursor is None:
            return None
        if isinstance(cursor, dict):
            validity, last, ack = cursor.get("uidvalidity"), cursor.get("last_uid"), cursor.get("ack_from")
            if isinstance(validity, int) and isinstance(last, int) and (ack is None or isinstance(ack, int)):
                return cls(validity, last, ack)
        raise errors.Permanent(
            f"the stored cursor {errors.redact(cursor)} is not a messages cursor;"
            " expected {uidvalidity: int, last_uid: int}",
            where=where,
        )


@dataclass(frozen=True, slots=True)
class MessagesPoll:
    """One poll: the session, the feed's settings with its folder resolved, the cursor and the limit."""

    session: ImapSession
    inputs: MessagesFeedInput
    folder: str
    cursor: Json
    limit: int


@dataclass(frozen=True, slots=True)
class Polled:
    """What a poll found; `acked` is the UID range `(uidvalidity, first, last)` to mark or move in `ack`."""

    items: list[Item]
    cursor: Json
    more: bool
    acked: tuple[int, int, int] | None


def poll_messages(poll: MessagesPoll) -> Polled:
    """Read the mails after the cursor, at most `limit`. Blocking: run it in a thread."""
    session, inputs = poll.session, poll.inputs
    with imap_session(session) as client:
        box = select(client, session, poll.folder, readonly=not inputs.needs_ack)
        state = _Cursor.from_json(poll.cursor, session.where)
        if state is not None and state.uidvalidity != box.uidvalidity:
            newest = _newest_uid(box)
            log.warning(
                "UIDVALIDITY of the folder changed: continuing after its newest mail; mails already there are"
                " not delivered again",
                extra={"where": session.where, "folder": poll.folder, "was": state.uidvalidity, "now": box.uidvalidity},
            )
            return Polled([], _Cursor(box.uidvalidity, newest).to_json(), False, None)
        if state is None and inputs.start == "now":
            return Polled([], _Cursor(box.uidvalidity, _newest_uid(box)).to_json(), False, None)
        last = state.last_uid if state is not None else 0
        if state is not None and state.ack_from is not None and inputs.needs_ack:
            apply_ack(box, session, inputs, f"{state.ack_from}:{state.last_uid}")  # an ack may have been lost
        uids = _uids_after(box, session, last)
        chosen = _within_budget(box, session, uids[: poll.limit], inputs.max_batch_bytes)
        items = _read(box, session, inputs, chosen)
    if not chosen:
        return Polled([], _Cursor(box.uidvalidity, last).to_json(), False, None)
    newest = chosen[-1]
    acked = (box.uidvalidity, last + 1, newest) if inputs.needs_ack else None
    cursor = _Cursor(box.uidvalidity, newest, last + 1 if inputs.needs_ack else None)
    return Polled(items, cursor.to_json(), len(chosen) < len(uids), acked)


def acknowledge(session: ImapSession, inputs: MessagesFeedInput, folder: str, acked: tuple[int, int, int]) -> None:
    """Mark as read and/or move the mails of a committed batch. Blocking: run it in a thread."""
    uidvalidity, first, last = acked
    with imap_session(session) as client:
        box = select(client, session, folder, readonly=False)
        if box.uidvalidity != uidvalidity:
            log.warning(
                "UIDVALIDITY of the folder changed before the batch was acknowledged:"
                " its mails are not marked or moved",
                extra={"where": session.where, "folder": folder},
            )
            return
        apply_ack(box, session, inputs, f"{first}:{last}")


def apply_ack(box: Mailbox, session: ImapSession, inputs: MessagesFeedInput, uids: str) -> None:
    """Mark `uids` read and/or move them; UIDs no longer in the folder are ignored by the server."""
    client = box.client
    if inputs.mark_seen:
        _ok(client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Seen)"), session, "marking mails as read")
    if inputs.move_to is None:
        return
    target = folder_name(inputs.move_to)
    typ, data = _move(box, uids, target)
    if typ != "OK" and b"TRYCREATE" in b" ".join(d for d in data if isinstance(d, bytes)):
        _ok(client.create(target), session, f"making the folder {inputs.move_to!r}")
        typ, data = _move(box, uids, target)
    _ok((typ, data), session, f"moving mails to {inputs.move_to!r}")


def _move(box: Mailbox, uids: str, target: str) -> tuple[str, list[bytes | None]]:
    client = box.client
    if "MOVE" in box.capabilities:
        return client.uid("MOVE", uids, target)
    typ, data = client.uid("COPY", uids, target)  # servers without MOVE (RFC 6851): copy, delete
    if typ != "OK":
        return typ, data
    typ, data = client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
    if typ == "OK" and "UIDPLUS" in box.capabilities:  # expunge only these; plain EXPUNGE would take others too
        typ, data = client.uid("EXPUNGE", uids)
    return typ, data


def _newest_uid(box: Mailbox) -> int:
    if box.uidnext > 0:
        return box.uidnext - 1
    if box.exists == 0:
        return 0
    typ, data = box.client.uid("SEARCH", "ALL")
    found = [int(uid) for uid in (data[0] or b"").split()] if typ == "OK" and isinstance(data[0], bytes) else []
    return max(found, default=0)


def _uids_after(box: Mailbox, session: ImapSession, last: int) -> list[int]:
    if box.exists == 0:
        return []
    data = _ok(box.client.uid("SEARCH", "UID", f"{last + 1}:*"), session, "searching for new mails")
    line = data[0] if data and isinstance(data[0], bytes) else b""
    # `n:*` always matches the newest mail, also when its UID is below n: keep only the new ones.
    return sorted(uid for uid in map(int, line.split()) if uid > last)


def _within_budget(box: Mailbox, session: ImapSession, uids: list[int], budget: int) -> list[int]:
    """The first UIDs whose sizes add up to at most `budget` bytes (at least one)."""
    if not uids:
        return []
    sizes = {uid: meta[0] for uid, meta in _metadata(box, session, uids).items()}
    chosen: list[int] = []
    total = 0
    for uid in uids:
        total += sizes.get(uid, 0)
        if chosen and total > budget:
            break
        chosen.append(uid)
    return chosen


def _metadata(box: Mailbox, session: ImapSession, uids: list[int]) -> dict[int, tuple[int, datetime | None]]:
    """UID → (size, when the server received it)."""
    found: dict[int, tuple[int, datetime | None]] = {}
    for start in range(0, len(uids), 200):
        chunk = ",".join(map(str, uids[start : start + 200]))
        data = _ok(box.client.uid("FETCH", chunk, "(UID RFC822.SIZE INTERNALDATE)"), session, "reading mail sizes")
        for line in data:
            text = line[0] if isinstance(line, tuple) else line
            if not isinstance(text, bytes):
                continue
            uid, size, arrived = 0, 0, None
            for match in _META.finditer(text):
                if match.group(1):
                    uid = int(match.group(1))
                elif match.group(2):
                    size = int(match.group(2))
                else:
                    arrived = _internaldate(match.group(3).decode())
            if uid:
                found[uid] = (size, arrived)
    return found


def _internaldate(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def _read(box: Mailbox, session: ImapSession, inputs: MessagesFeedInput, uids: list[int]) -> list[Item]:
    policy = AttachmentPolicy(inputs.attachments == "include", inputs.max_attachment_bytes)
    arrived = {uid: meta[1] for uid, meta in _metadata(box, session, uids).items()} if uids else {}
    items: list[Item] = []
    for start in range(0, len(uids), _FETCH_CHUNK):
        chunk = uids[start : start + _FETCH_CHUNK]
        raws = _bodies(box, session, chunk)
        for uid in chunk:
            raw = raws.get(uid)
            if raw is None:  # deleted since the search: nothing left to deliver
                continue
            body, date = received_body(raw, arrived.get(uid), policy)
            assert isinstance(body, dict)
            body.update({"folder": box.folder, "uidvalidity": box.uidvalidity, "uid": uid})
            items.append(Item(body=body, key=f"{box.folder}:{box.uidvalidity}:{uid}", at=date))
    return items


def _bodies(box: Mailbox, session: ImapSession, uids: list[int]) -> dict[int, bytes]:
    data = _ok(box.client.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])"), session, "reading mails")
    found: dict[int, bytes] = {}
    for index, part in enumerate(data):
        if not isinstance(part, tuple) or b"BODY[]" not in part[0]:
            continue  # the closing ")" or an unsolicited FLAGS update
        uid = re.search(rb"UID (\d+)", part[0])
        after = data[index + 1] if index + 1 < len(data) else None
        if uid is None and isinstance(after, bytes):  # some servers send the UID after the literal
            uid = re.search(rb"UID (\d+)", after)
        if uid is not None:
            found[int(uid.group(1))] = part[1]
    return found


def _ok(
    reply: tuple[str, list[object]] | tuple[str, list[bytes | None]], session: ImapSession, doing: str
) -> list[object]:
    typ, data = reply
    if typ == "OK":
        return list(data)
    said = " ".join(d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data if d)
    raise errors.Permanent(
        f"{session.server} refused {doing}: {errors.redact(' '.join(said.split()), limit=200)}", where=session.where
    )
