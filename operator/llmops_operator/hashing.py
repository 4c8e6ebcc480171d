"""The one canonical hash: sha256 over compact, key-sorted JSON (UTF-8, non-ASCII kept as is).

Revision names, prompt content hashes, step hashes, dataset hashes and the apply-skip cache all
hash through here, so equal content always hashes equal, whatever the key order.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form every hash is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_digest(text: str, length: int | None = None) -> str:
    """Hex sha256 of a string, cut to `length` characters when given."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def digest(value: Any, length: int | None = None) -> str:
    """Hex sha256 of the canonical JSON of `value`, cut to `length` characters when given."""
    return text_digest(canonical_json(value), length)
