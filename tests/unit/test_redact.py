"""Messages copied into status and Events are bounded and carry no credentials."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.redact import MAX_MESSAGE, bounded, scrub

SECRET = st.text(string.ascii_uppercase + string.digits, min_size=12, max_size=64)
TEXT = st.text(string.ascii_lowercase + string.punctuation + " \n:/@=?&", max_size=3000)
"""Surrounding text never spells the secret (it has no upper case or digits), so a hit is a leak."""


@given(prefix=TEXT, secret=SECRET, suffix=TEXT)
@settings(max_examples=200)
def test_url_userinfo_never_survives(prefix: str, secret: str, suffix: str) -> None:
    message = f"{prefix} judge https://alice:{secret}@judge.example/v1 {suffix}"
    assert f"alice:{secret}" not in bounded(message, 100_000)


@given(prefix=TEXT, secret=SECRET, suffix=TEXT)
@settings(max_examples=200)
def test_query_tokens_and_bearer_never_survive(prefix: str, secret: str, suffix: str) -> None:
    for shape in (
        f"http://h/v1?api_key={secret}&x=1",
        f"Authorization: Bearer {secret}",
        f"authorization={secret}",
        f"bearer {secret}",
        f"token hf_{secret}",
        f"?access_token={secret}",
    ):
        assert secret not in bounded(f"{prefix} {shape} {suffix}", 100_000), shape


@given(TEXT)
def test_bounded_length(text: str) -> None:
    assert len(bounded(text)) <= MAX_MESSAGE
    assert len(bounded(text, 40)) <= 40


def test_a_token_cut_at_the_limit_leaks_nothing() -> None:
    secret = "Z" * 40
    message = "x" * (MAX_MESSAGE - 10) + f" Bearer {secret}"
    assert "ZZZ" not in bounded(message)


def test_plain_messages_are_untouched() -> None:
    message = "revision abc123 has 2/3 replicas ready; token budget 4096, see key=value docs"
    assert scrub("revision abc123 has 2/3 replicas ready") == "revision abc123 has 2/3 replicas ready"
    assert bounded(message).startswith("revision abc123 has 2/3 replicas ready; token budget 4096")
