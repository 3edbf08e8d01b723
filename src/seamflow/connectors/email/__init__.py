"""The `email` connector: sends mail over SMTP, with a Message-ID derived from the idempotency key.

`connector.py` holds the connector and the classification of SMTP failures, `config.py` the
connection settings (server, security, credentials, sender), `message.py` the `send` action's
inputs and how they become a MIME message. Receiving: `imap.py` the IMAP session and its
failures, `messages_feed.py` the `messages` poll feed (cursor, ack), `received.py` a mail decoded
into an event body. See docs/howto/connectors/email.md.
"""

from __future__ import annotations

from seamflow.connectors.email.connector import EmailConnector

__all__ = ["EmailConnector"]
