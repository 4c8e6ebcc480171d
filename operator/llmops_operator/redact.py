"""The one gate for text copied into status, Events and logs: length-bounded, credentials scrubbed.

Messages often quote something a tenant or a server wrote (a URL, an exception, a response body).
Such text may hold a password in URL userinfo, an `api_key=` query parameter or a bearer token;
none of that may reach status or Events, which many more people can read than the Secret it came
from. Every pattern is linear (no nested quantifiers), so a hostile message cannot stall a pass.
"""

from __future__ import annotations

import re

MAX_MESSAGE = 1024
"""Longest message written to a condition, an Event or an EvalRun status message."""
REDACTED = "***"
_LOOKAHEAD = 4096
"""Scrubbing looks this far past the limit, so a credential cut at the limit is still found."""

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/\s@?#]{1,2048}@")
_SECRET_PARAM = re.compile(
    r"(?P<key>(?:api[_-]?key|apikey|access[_-]?token|token|secret|password|passwd|pwd|auth|signature|sig|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token|key)=)[^&\s\"'#]{1,4096}",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>\bbearer\s{1,8})[A-Za-z0-9._~+/=-]{8,4096}", re.IGNORECASE)
_HEADER = re.compile(
    r"(?P<key>\b(?:authorization|x-api-key|api-key|cookie)\s{0,8}[:=]\s{0,8}"
    r"(?:(?:bearer|basic|token)\s{1,8})?)[^\s,;\"']{1,4096}",
    re.IGNORECASE,
)
_KNOWN_TOKENS = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{8,256}|sk-[A-Za-z0-9_-]{8,256}|gh[pousr]_[A-Za-z0-9]{8,256})"
)


def scrub(text: str) -> str:
    """`text` with credentials replaced by `***` (URL userinfo, secret query parameters, bearer
    tokens, Authorization headers and well-known token shapes)."""
    # Each pattern runs only when its cheap trigger is present: most messages hold none, and
    # conditions are set on every pass.
    lower = text.lower()
    if "://" in text and "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: f"{m['key']}{REDACTED}", text)
    if any(word in lower for word in ("authorization", "api-key", "cookie")):
        text = _HEADER.sub(lambda m: f"{m['key']}{REDACTED}", text)
    if "bearer" in lower:
        text = _BEARER.sub(lambda m: f"{m['key']}{REDACTED}", text)
    if "hf_" in text or "sk-" in text or "_" in text:
        text = _KNOWN_TOKENS.sub(REDACTED, text)
    return text


def bounded(text: object, limit: int = MAX_MESSAGE) -> str:
    """A message safe to copy into status or an Event: scrubbed, then cut to `limit` characters.

    Scrubbing runs on a slightly longer prefix than the limit, so a token cut in half at the
    limit is still recognised and never leaks its first characters.
    """
    raw = str(text)
    clean = scrub(raw[: limit + _LOOKAHEAD])
    if len(clean) <= limit and len(raw) <= limit + _LOOKAHEAD:
        return clean
    return clean[: max(limit - 1, 0)] + "…"
