"""The audit trail: who did what, when, on which object and from where, in a hash chain.

Every administrative and human action (a flow deployed, a secret set, a run replayed, an
approval decided, a role granted, a token created or revoked, a sign-in or a failed one, a
connection authorized) is one entry. Entries are hash-chained (SHA-256 over each entry's
canonical content and the previous hash), so `seamflow audit verify` names the first entry
that was deleted, edited or moved. See docs/howto/audit.md.
"""

from __future__ import annotations

from seamflow.audit.chain import Verdict
from seamflow.audit.entry import GENESIS, Action, Actor, Origin, entry_hash, entry_json
from seamflow.audit.trail import AuditTrail, entry_after

__all__ = ["GENESIS", "Action", "Actor", "AuditTrail", "Origin", "Verdict", "entry_after", "entry_hash", "entry_json"]
