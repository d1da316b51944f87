"""Keeping credentials out of messages: error texts, log lines, conditions and Events.

Why a helper of its own: a message often carries text gridaware did not write, such as a feed
provider's error body that echoes the API key it was sent, a URL with ``securityToken=`` in its
query, or a Kubernetes client error about a kubeconfig. Whoever builds such a message knows
which credentials were involved (the values it sent), so it masks them here before the text
goes anywhere: ``redact(text, secrets)``. Besides the values themselves, their percent-encoded
and base64 forms are masked (an ``Authorization: Basic`` header is base64 of ``user:password``,
a kubeconfig travels base64-encoded in a Secret), and credentials that look like credentials
whoever sent them (``?token=...`` query parameters, ``Bearer ...``) are masked too.

Pure (no I/O): the signals and k8s layers use it where their errors are built, and
``RedactingFilter`` masks what looks like a credential in every log record, including
libraries' debug lines (urllib3 logs each request's URL, query string included).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
# Values shorter than this are not masked: they would mask unrelated words (a user name, a
# port), and no credential worth the name is that short.
MIN_SECRET_LENGTH = 8
# Query parameters whose value is a credential, by how their name ends (securityToken,
# api_key, X-Amz-Signature, sig; not signal_type).
_CREDENTIAL_PARAM = re.compile(
    r"(?i)(\b[\w.-]*(?:token|key|secret|passw(?:or)?d|pwd|signature|sig|auth|authorization"
    r"|credentials?)=)[^&#\s\"'<>]+"
)
# Credentials in HTTP authorization schemes: "Bearer <token>", "Basic <base64>".
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{20,}")


def _base64_cores(raw: bytes) -> set[str]:
    """The characters of the base64 (standard and URL-safe) of ``raw`` that ``raw`` alone
    determines, at each of the three byte offsets it can have inside a longer encoded text:
    so the secret is found in base64 of a whole document too, not only encoded on its own."""
    cores: set[str] = set()
    for offset in range(3):
        padded = bytes(offset) + raw
        start = -(-8 * offset // 6)  # the first character made of the secret's bits only
        end = 8 * (offset + len(raw)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(padded).decode("ascii")[start:end]
            if len(core) >= MIN_SECRET_LENGTH:
                cores.add(core)
    return cores


def forms(secret: str) -> frozenset[str]:
    """Every way ``secret`` is looked for: as is, percent-encoded, and in base64 (standard
    and URL-safe, alone or inside longer encoded text); empty for a too short value."""
    if len(secret) < MIN_SECRET_LENGTH:
        return frozenset()
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    found |= _base64_cores(secret.encode("utf-8"))
    return frozenset(f for f in found if len(f) >= MIN_SECRET_LENGTH)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every form of every secret (see ``forms``), every credential-named query
    parameter's value and every Bearer/Basic credential replaced by ``MASK``.

    One left-to-right pass, longest form first: what is left of ``text`` outside the masks
    contains no form of a secret (a mask could only spell one if a secret were part of the
    mask's own text)."""
    needles = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
    if needles:
        text = re.sub("|".join(map(re.escape, needles)), MASK, text)
    text = _CREDENTIAL_PARAM.sub(lambda m: m.group(1) + MASK, text)
    return _AUTH_SCHEME.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


class RedactingFilter(logging.Filter):
    """Masks credential-looking text (``redact`` without known secrets) in every record of the
    handler it is added to; a handler's filter sees the records of every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # a traceback quotes URLs and bodies too
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
