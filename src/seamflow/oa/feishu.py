"""Feishu (飞书) event subscription security: the `encrypt` field and the `X-Lark-Signature` header.

With an Encrypt Key set, Feishu sends `{"encrypt": base64(iv + AES-256-CBC(event JSON))}` keyed by
SHA-256 of the Encrypt Key (PKCS#7 to 16-byte blocks), and signs each delivery: `X-Lark-Signature`
is the SHA-256 hex of timestamp + nonce + Encrypt Key + the raw body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from seamflow import errors

__all__ = ["FeishuCipher", "feishu_signature"]


def feishu_signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """Return Feishu's `X-Lark-Signature`: SHA-256 hex of timestamp + nonce + Encrypt Key + body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


class FeishuCipher:
    """Decrypts (and, for tests and local platforms, encrypts) Feishu's `encrypt` field."""

    def __init__(self, encrypt_key: str) -> None:
        self._key = hashlib.sha256(encrypt_key.encode()).digest()

    def decrypt(self, encrypted: str) -> str:
        """Return the event JSON text inside `encrypt`.

        Raises:
            errors.Unauthorized: not decryptable with this Encrypt Key.
        """
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise _refused("the encrypt field is not base64") from None
        if len(raw) < 32 or len(raw) % 16:
            raise _refused("the encrypt field is not an IV and whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(raw[:16])).decryptor()
        padded = decryptor.update(raw[16:]) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
            return plain.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise _refused("the message does not decrypt with this Encrypt Key") from None

    def encrypt(self, message: str) -> str:
        """Return `encrypt` for `message`, with a random IV."""
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(message.encode()) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(iv)).encryptor()
        return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def _refused(problem: str) -> errors.Unauthorized:
    return errors.Unauthorized(f"callback refused: {problem}", code="oa.decrypt_failed")
