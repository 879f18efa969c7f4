"""SNMPv3 User-based Security Model for the lab's agents (RFC 3414, 3826, 7860 and the AES-192/256
key-extension drafts), written independently of pysnmp.

The collector talks SNMPv3 through pysnmp; the lab implements the other side on its own (hashlib,
hmac and `cryptography`), so a lab test is a test between two implementations, next to the tests
against net-snmp's snmpd. Keys are derived once per (user, engine) and cached: the 1 MiB password
hash is the expensive part of USM.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 moved the legacy ciphers and modes
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore
try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    CFB = modes.CFB  # type: ignore[misc]

# name -> (hash, length of the MAC in the message)
AUTH = {
    "MD5": (hashlib.md5, 12),
    "SHA": (hashlib.sha1, 12),
    "SHA224": (hashlib.sha224, 16),
    "SHA256": (hashlib.sha256, 24),
    "SHA384": (hashlib.sha384, 32),
    "SHA512": (hashlib.sha512, 48),
}
# name -> (key bytes, key extension: None | "blumenthal" | "reeder")
PRIV = {
    "DES": (16, None),  # 8 key bytes + 8 pre-IV bytes
    "AES": (16, None),
    "AES192": (24, "blumenthal"),
    "AES256": (32, "blumenthal"),
    "AES192C": (24, "reeder"),
    "AES256C": (32, "reeder"),
}


def _stretch(secret: bytes, auth: str) -> bytes:
    """RFC 3414 A.2: the hash of `secret` repeated to exactly 1 MiB."""
    return AUTH[auth][0]((secret * (1048576 // len(secret) + 1))[:1048576]).digest()


@functools.lru_cache(maxsize=256)
def password_key(password: str, auth: str) -> bytes:
    return _stretch(password.encode(), auth)


def _localize(key: bytes, engine_id: bytes, auth: str) -> bytes:
    return AUTH[auth][0](key + engine_id + key).digest()


@functools.lru_cache(maxsize=4096)
def localized_keys(
    auth: str, auth_password: str, priv: str, priv_password: str, engine_id: bytes
) -> tuple[bytes, bytes]:
    """(auth key, priv key) localized to `engine_id`, the priv key extended where needed."""
    auth_key = _localize(password_key(auth_password, auth), engine_id, auth) if auth else b""
    priv_key = b""
    if priv:
        size, extension = PRIV[priv]
        priv_key = _localize(password_key(priv_password, auth), engine_id, auth)
        while len(priv_key) < size:
            if extension == "reeder":  # repeat password-to-key on the key so far
                priv_key += _localize(_stretch(priv_key, auth), engine_id, auth)
            else:  # blumenthal
                priv_key += AUTH[auth][0](priv_key).digest()
        priv_key = priv_key[:size]
    return auth_key, priv_key


def mac(auth: str, key: bytes, message: bytes) -> bytes:
    digest, size = AUTH[auth]
    return hmac.new(key, message, digest).digest()[:size]


def decrypt(priv: str, key: bytes, boots: int, time_: int, salt: bytes, data: bytes) -> bytes:
    if len(salt) != 8:
        raise ValueError("privacy parameters must be 8 bytes")
    if priv == "DES":
        if len(data) % 8:
            raise ValueError("DES data is not a multiple of 8 bytes")
        iv = bytes(a ^ b for a, b in zip(key[8:16], salt, strict=True))
        decryptor = Cipher(TripleDES(key[:8] * 3), modes.CBC(iv)).decryptor()
    else:
        iv = boots.to_bytes(4, "big") + time_.to_bytes(4, "big") + salt
        decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


@dataclass
class Encryptor:
    """Holds the salt counter of one agent (salts must not repeat for a key)."""

    counter: int = int.from_bytes(os.urandom(8), "big")

    def encrypt(
        self, priv: str, key: bytes, boots: int, time_: int, data: bytes
    ) -> tuple[bytes, bytes]:
        self.counter = (self.counter + 1) & 0xFFFFFFFFFFFFFFFF
        if priv == "DES":
            salt = boots.to_bytes(4, "big") + (self.counter & 0xFFFFFFFF).to_bytes(4, "big")
            iv = bytes(a ^ b for a, b in zip(key[8:16], salt, strict=True))
            data += b"\0" * (-len(data) % 8)
            encryptor = Cipher(TripleDES(key[:8] * 3), modes.CBC(iv)).encryptor()
        else:
            salt = self.counter.to_bytes(8, "big")
            iv = boots.to_bytes(4, "big") + time_.to_bytes(4, "big") + salt
            encryptor = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
        return encryptor.update(data) + encryptor.finalize(), salt
