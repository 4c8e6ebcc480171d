"""The one canonical hash: key order never matters, and ASCII content hashes as it always did."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.hashing import canonical_json, digest, text_digest

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), JSON, max_size=6))
def test_key_order_never_changes_the_hash(value: dict) -> None:
    reordered = dict(reversed(list(value.items())))
    assert digest(value) == digest(reordered)


@given(st.dictionaries(st.text(alphabet="abcxyz-_.0123", max_size=6), st.text(alphabet="abc 19", max_size=8)))
def test_ascii_content_hashes_as_before_the_helper(value: dict) -> None:
    """Revision names in running clusters were hashed with ensure_ascii=True: for ASCII content
    the canonical form is byte-identical, so no revision is renamed."""
    before = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert digest(value, 10) == hashlib.sha256(before.encode()).hexdigest()[:10]


def test_non_ascii_is_kept_and_length_cuts() -> None:
    assert canonical_json({"b": "é", "a": 1}) == '{"a":1,"b":"é"}'
    assert len(digest({"a": 1}, 5)) == 5
    assert len(digest({"a": 1})) == 64
    assert text_digest("x") == hashlib.sha256(b"x").hexdigest()
