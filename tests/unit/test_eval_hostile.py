"""What a tenant (or the model under test) writes cannot hang or break a gate: RE2 regexes, a
linear judge parser, no remote `$ref`, deep JSON as an outcome rather than an exception.

The hang guards use pytest's timeout far above the linear cost (microseconds): the catastrophic
inputs below take hours on a backtracking engine, so reintroducing one fails the test."""

from __future__ import annotations

import contextlib
import http.server
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api.evals import Assertion
from llmops_operator.evals import assertions as a
from llmops_operator.evals.dataset import Case

CASE = Case(id="c1", vars={}, expected="x", metadata={})
EVIL = "a" * 64 + "!"
"""`(a+)+$` on this takes 2^64 steps on a backtracking engine."""


def run(spec: dict, answer: str) -> a.Outcome:
    assertion = Assertion.model_validate(spec)
    a.check_assertion(assertion, "x")
    return a.evaluate(assertion, "x", answer, CASE)


@pytest.mark.timeout(30)
def test_catastrophic_regex_is_linear() -> None:
    outcome = run({"type": "regex", "value": "(a+)+$"}, EVIL)
    assert outcome.passed is False and outcome.error is None
    assert run({"type": "regex", "value": "(a+)+!$"}, EVIL).passed


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)", r"(?<!a)b"])
def test_patterns_re2_cannot_run_are_rejected_at_apply_time(pattern: str) -> None:
    with pytest.raises(ValidationError, match="RE2"):
        Assertion.model_validate({"type": "regex", "value": pattern})


@pytest.mark.timeout(30)
def test_judge_parser_is_linear_on_hostile_answers() -> None:
    for hostile in (
        "score" + " " * 200_000 + "x",
        "1" * 200_000,
        "{" * 100_000 + "score",
        ("Score: " + " " * 50 + "/") * 5000,
        "9" * 100_000 + " out of " + "9" * 100_000,
    ):
        with contextlib.suppress(a.JudgeParseError):
            a.parse_judge_score(hostile)


@given(st.text(max_size=2000))
@settings(max_examples=300)
def test_judge_parser_only_raises_its_own_error(text: str) -> None:
    try:
        score = a.parse_judge_score(text)
    except a.JudgeParseError:
        return
    assert 0.0 <= score <= 1.0


@pytest.mark.timeout(30)
def test_json_schema_patterns_run_on_re2() -> None:
    spec = {"type": "jsonSchema", "value": {"type": "string", "pattern": "(a+)+$"}}
    assert run(spec, f'"{EVIL}"').passed is False
    props = {"type": "jsonSchema", "value": {"type": "object", "patternProperties": {"(a+)+$": False}}}
    assert run(props, f'{{"{EVIL}": 1}}').passed is True


def test_json_schema_never_fetches_a_remote_ref() -> None:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"type": "string"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/schema.json"
        outcome = run({"type": "jsonSchema", "value": {"$ref": url}}, '"text"')
    finally:
        server.shutdown()
    assert hits == []
    assert outcome.error and "only local refs" in outcome.error


def test_local_refs_still_work() -> None:
    schema = {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"}
    assert run({"type": "jsonSchema", "value": schema}, '"ok"').passed
    assert not run({"type": "jsonSchema", "value": schema}, "1").passed


def test_deeply_nested_answers_are_outcomes_not_exceptions() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    assert run({"type": "jsonSchema", "value": {"type": "array"}}, deep).passed is False
    assert run({"type": "contains", "value": "x", "field": "a.b"}, deep).passed is False
