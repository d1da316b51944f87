"""core.redact: credentials are masked in every form they travel in, and nothing else is."""

from __future__ import annotations

import base64
import logging
import string
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gridaware.core.redact import MASK, MIN_SECRET_LENGTH, RedactingFilter, forms, redact

KEY = "k3y-0f-the-feed_provider"
B64 = base64.b64encode(KEY.encode()).decode()


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        pytest.param(f"rejected: bad key {KEY}", [KEY], f"rejected: bad key {MASK}", id="as-is"),
        pytest.param(
            "GET /api?securityToken=abc123def456&documentType=A44 failed",
            [],
            f"GET /api?securityToken={MASK}&documentType=A44 failed",
            id="credential-query-parameter-unknown-value",
        ),
        pytest.param(
            "https://x/v3?zone=DE&api_key=s3cr3tvalue",
            [],
            f"https://x/v3?zone=DE&api_key={MASK}",
            id="api-key-parameter",
        ),
        pytest.param(
            f"echo: {{'auth-token': '{KEY}'}}",
            [KEY],
            f"echo: {{'auth-token': '{MASK}'}}",
            id="echoed-header",
        ),
        pytest.param(f"data: {B64}", [KEY], f"data: {MASK}", id="base64-of-the-secret"),
        pytest.param(
            f"body {base64.b64encode(b'user:' + KEY.encode()).decode()} end",
            [KEY],
            f"body dXNlcjp{MASK}I= end",  # only characters made of user: or padding are left
            id="base64-inside-basic-credentials",
        ),
        pytest.param(
            "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            [],
            f"Authorization: Bearer {MASK}",
            id="bearer-token-unknown-value",
        ),
        pytest.param(
            "token a%2Bb%2Fc%3Dd%26e%21f%20g rejected",
            ["a+b/c=d&e!f g"],
            f"token {MASK} rejected",
            id="percent-encoded",
        ),
        pytest.param(
            "/v3/forecast?region=DE&signal_type=co2_moer&sig=abc123&X-Amz-Signature=f00d",
            [],
            f"/v3/forecast?region=DE&signal_type=co2_moer&sig={MASK}&X-Amz-Signature={MASK}",
            id="parameter-names-that-only-look-alike-are-kept",
        ),
        pytest.param("password pw is short", ["pw"], "password pw is short", id="too-short"),
        pytest.param(
            "Basic authentication failed for basic setups",
            [],
            "Basic authentication failed for basic setups",
            id="prose-is-not-a-credential",
        ),
        pytest.param(
            "zone DE-LU: no data (404)", [KEY], "zone DE-LU: no data (404)", id="nothing-to-mask"
        ),
    ],
)
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


SECRET = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~+/=:!@$%^&*() ",
    min_size=MIN_SECRET_LENGTH,
    max_size=80,
)
TEXT = st.text(max_size=200)


@given(prefix=TEXT, secret=SECRET, suffix=TEXT)
def test_no_form_of_a_secret_survives(prefix: str, secret: str, suffix: str) -> None:
    assume(secret not in MASK)
    out = redact(prefix + secret + suffix, [secret])
    left = [f for f in forms(secret) if f in out]
    assert left == [], out


@given(prefix=st.binary(max_size=60), secret=SECRET, suffix=st.binary(max_size=60))
def test_a_secret_inside_a_base64_document_is_masked(
    prefix: bytes, secret: str, suffix: bytes
) -> None:
    """A kubeconfig in a Secret, a Basic header: the secret at any offset of encoded text."""
    assume(len(secret) >= 12)  # the alignment costs up to two characters at each end
    document = base64.b64encode(prefix + secret.encode() + suffix).decode()
    assert redact(document, [secret]) != document


@given(text=st.text(alphabet=string.ascii_letters + string.digits + " .,:;()/-", max_size=300))
def test_text_without_credentials_is_unchanged(text: str) -> None:
    """No '=' and no Bearer/Basic: nothing looks like a credential, nothing is masked."""
    assume("bearer" not in text.lower() and "basic" not in text.lower())
    assert redact(text, []) == text


@given(text=TEXT, secret=SECRET)
def test_redact_is_idempotent(text: str, secret: str) -> None:
    assume(secret not in MASK)
    once = redact(text + secret, [secret])
    assert redact(once, [secret]) == once


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        pytest.param(
            '%s://%s:%s "%s %s %s" %s %s',
            (
                "https",
                "web-api",
                443,
                "GET",
                "/api?securityToken=abc-123-def&x=1",
                "HTTP/1.1",
                400,
                9,
            ),
            f'https://web-api:443 "GET /api?securityToken={MASK}&x=1 HTTP/1.1" 400 9',
            id="urllib3-request-line",
        ),
        pytest.param("probe of %s: %s", ("us-west", "ok"), "probe of us-west: ok", id="clean"),
    ],
)
def test_log_records_are_masked(msg: str, args: tuple[object, ...], expected: str) -> None:
    record = logging.LogRecord("urllib3", logging.DEBUG, __file__, 1, msg, args, None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == expected


def test_tracebacks_are_masked_too() -> None:
    try:
        raise ValueError("GET https://api.example/x?token=abcdefghijklmnop failed")
    except ValueError:
        record = logging.LogRecord(
            "gridaware", logging.ERROR, __file__, 1, "round failed", (), sys.exc_info()
        )
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "abcdefghijklmnop" not in text and f"token={MASK}" in text
