"""The message encryption DingTalk and WeCom share for callbacks (钉钉/企业微信回调加解密).

Both platforms send `encrypt` = base64(AES-256-CBC(random 16 bytes + 4-byte big-endian length +
message + receiver id)), keyed by base64-decoding the 43-character EncodingAESKey plus `=`, with
the key's first 16 bytes as the IV and PKCS#7 padding to 32-byte blocks; `msg_signature` is the
SHA-1 hex of the sorted, concatenated token, timestamp, nonce and `encrypt`. The receiver id is
the DingTalk app key (or corp id, or suite key) and the WeCom corp id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from seamflow import errors

__all__ = ["MessageCipher", "message_signature"]

_BLOCK = 32
"""The padding block both platforms use: PKCS#7 to 32 bytes, not AES's 16."""


def message_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Return `msg_signature`: SHA-1 hex of the sorted, concatenated token, timestamp, nonce and `encrypt`."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()  # noqa: S324 - the platforms' documented scheme


class MessageCipher:
    """Decrypts and encrypts callback messages for one receiver (a DingTalk app or a WeCom corp).

    Args:
        aes_key: the 43-character EncodingAESKey from the platform's console.
        receiver_id: the DingTalk app key / corp id, or the WeCom corp id.
        where: where the key came from, for errors (`trigger.oa.aes_key`).

    Raises:
        errors.InvalidInput: the key is not 43 characters of base64 for 32 bytes.
    """

    def __init__(self, aes_key: str, receiver_id: str, *, where: str = "aes_key") -> None:
        try:
            key = base64.b64decode(aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(aes_key) != 43 or len(key) != 32:
            raise errors.InvalidInput(
                f"{where} is not an EncodingAESKey; expected the 43 characters the platform's console shows",
                code="oa.key_invalid",
            )
        self._key = key
        self._receiver_id = receiver_id.encode()

    def decrypt(self, encrypted: str) -> str:
        """Return the message inside `encrypt`, after checking its length field and receiver id.

        Raises:
            errors.Unauthorized: not decryptable with this key, or meant for another receiver.
        """
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise _refused("the encrypt field is not base64") from None
        if not raw or len(raw) % 16:
            raise _refused("the encrypt field is not a whole number of AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise _refused("the message does not decrypt with this aes_key (bad padding)")
        plain = padded[:-pad]
        if len(plain) < 20:
            raise _refused("the decrypted message is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receiver = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length:
            raise _refused("the decrypted message is shorter than its length field")
        if not hmac.compare_digest(receiver, self._receiver_id):
            raise _refused("the message is meant for another receiver id (app key or corp id)")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise _refused("the decrypted message is not UTF-8") from None

    def encrypt(self, message: str, *, random_prefix: bytes | None = None) -> str:
        """Return `encrypt` for `message` (a reply such as DingTalk's "success", or a test's callback)."""
        body = message.encode()
        plain = (random_prefix or os.urandom(16)) + struct.pack(">I", len(body)) + body + self._receiver_id
        pad = _BLOCK - len(plain) % _BLOCK
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()


def _refused(problem: str) -> errors.Unauthorized:
    return errors.Unauthorized(f"callback refused: {problem}", code="oa.decrypt_failed")
