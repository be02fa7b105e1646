"""Request ids as signed tokens: any router replica can tell which variant answered, and nobody else
can make one.

The id a router hands out (`X-Request-Id`) carries what `/feedback` needs to join a reward: the
variant that answered, whether it answered successfully, when, and a random nonce that names the
request in the de-duplication store. It is authenticated with HMAC-SHA256 (RFC 2104) under a key the
replicas of one router Deployment share, and the MAC also covers the deployment's name, so an id of
another deployment does not verify here. Design decision: stateless ids, because the alternative (a
table from id to variant) must be shared by every replica and survive restarts, on the request path;
a token needs one HMAC per request (about a microsecond) and lets any replica, a restarted one too,
attribute a reward without asking anyone. What cannot be carried in the token, "was this reward
already counted", lives in `dedup` and is asked only on `/feedback`.

Format (URL-safe base64 without padding, so it is a plain header value and JSON string)::

    <payload>.<mac>
    payload = version (1 byte) | flags (1 byte; bit 0: answered with a 2xx) |
              issued at, milliseconds since the epoch (6 bytes, big-endian) |
              nonce (12 random bytes) | variant name (UTF-8)
    mac     = HMAC-SHA256(key, deployment | 0x00 | payload), first 16 bytes

A 128-bit tag is what NIST SP 800-107 allows for HMAC truncation with a wide margin; a guess
succeeds with probability 2^-128. The nonce is 96 random bits: ids never collide across replicas
and restarts, and knowing one id says nothing about the next. Pure (the caller passes the clock and
the randomness source).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

VERSION = 1
NONCE_BYTES = 12
MAC_BYTES = 16
_HEAD = 1 + 1 + 6 + NONCE_BYTES
MAX_VARIANT_BYTES = 253
MAX_TOKEN_CHARS = 4 * (_HEAD + MAX_VARIANT_BYTES + 2) // 3 + 1 + 4 * (MAC_BYTES + 2) // 3
"""Longest token this module issues (a bound for the `/feedback` field)."""
_OK = 0x01


class TokenError(Exception):
    """The request id is malformed, not signed with this deployment's key, or expired."""


@dataclass(frozen=True)
class Claims:
    """What a verified request id says about its request."""

    variant: str
    issued_ms: int
    nonce: str
    """Hex of the 12 random bytes: the request's key in the de-duplication store."""
    answered: bool
    """True when the variant answered with a 2xx; only those requests take a reward."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Issues and verifies the request ids of one deployment's routers."""

    def __init__(self, key: bytes, *, deployment: str, random: Callable[[int], bytes]) -> None:
        if len(key) < 16:
            raise ValueError("the request-id key must be at least 16 bytes")
        self._random = random
        # HMAC (RFC 2104) with its two keyed SHA-256 states computed once, the deployment's name
        # already absorbed: per id, two copies and two updates (about half the time of a
        # one-shot hmac.digest, which redoes the key schedule each call).
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._inner.update(deployment.encode() + b"\0")
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def _mac(self, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:MAC_BYTES]

    def issue(self, variant: str, *, answered: bool, now_ms: int) -> str:
        """A new request id for a request `variant` answered at `now_ms`."""
        name = variant.encode()[:MAX_VARIANT_BYTES]
        payload = b"".join(
            (
                bytes((VERSION, _OK if answered else 0)),
                now_ms.to_bytes(6, "big"),
                self._random(NONCE_BYTES),
                name,
            )
        )
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, *, now_ms: int, ttl_ms: int) -> Claims:
        """The claims of a request id issued by this deployment's routers less than `ttl_ms`
        ago; `TokenError` (saying why) otherwise."""
        head, dot, tail = token.partition(".")
        if not dot or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("not a request id of this router")
        try:
            payload, mac = _unb64(head), _unb64(tail)
        except (binascii.Error, ValueError) as exc:
            raise TokenError("not a request id of this router") from exc
        if len(payload) <= _HEAD or payload[0] != VERSION:
            raise TokenError("not a request id of this router")
        # One spelling per id: base64's last character carries unused bits, and another
        # spelling of the same bytes must not pass for another id.
        if _b64(payload) != head or _b64(mac) != tail:
            raise TokenError("not a request id of this router")
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TokenError("not a request id of this router")
        issued = int.from_bytes(payload[2:8], "big")
        if now_ms - issued > ttl_ms:
            raise TokenError(f"older than the feedback TTL ({ttl_ms / 1000:g} s)")
        try:
            variant = payload[_HEAD:].decode()
        except UnicodeDecodeError as exc:  # signed by us, so never; but never a 500 either
            raise TokenError("not a request id of this router") from exc
        return Claims(
            variant=variant,
            issued_ms=issued,
            nonce=payload[8:_HEAD].hex(),
            answered=bool(payload[1] & _OK),
        )
