"""One function per assertion type, plus the checks that run before any request.

Every check returns an `Outcome`: passed, a 0..1 score, and a detail for people.
`error` is set when the check could not be evaluated (e.g. an unparseable judge
answer or a case without the reference text); errors are never counted as passes.

The text-similarity libraries (rapidfuzz, rouge-score with nltk, sacrebleu) are imported when
a score is first asked for: only the eval runner scores answers, and they would add about
26 MiB to the operator's memory, which only validates assertions.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from llmops_operator.api.evals import DEFAULT_THRESHOLDS, SAFETY_TYPES, Assertion, compile_regex
from llmops_operator.evals.dataset import Case


class AssertionConfigError(ValueError):
    """An assertion is unusable (bad regex, bad schema) and is caught before any request."""


class JudgeParseError(ValueError):
    """The judge's answer holds no score we can read."""


class JudgeScoreOutOfRange(JudgeParseError):
    """A structured judge answer whose score is outside 0..1: never rescaled, never a pass."""


@dataclass(frozen=True)
class Outcome:
    """Result of one assertion on one answer."""

    passed: bool
    score: float
    detail: str = ""
    error: str | None = None
    measured: float | None = None

    @staticmethod
    def failed_to_evaluate(reason: str) -> Outcome:
        return Outcome(passed=False, score=0.0, detail=reason, error=reason)


def assertion_name(assertion: Assertion, index: int) -> str:
    return assertion.name or f"{assertion.type}[{index}]"


def threshold_of(assertion: Assertion) -> float:
    if assertion.threshold is not None:
        return assertion.threshold
    return DEFAULT_THRESHOLDS.get(assertion.type, 1.0)


def check_assertion(assertion: Assertion, name: str) -> None:
    """Reject what would fail on every case: invalid regexes and JSON schemas, missing operands."""
    if assertion.type == "regex":
        patterns = [p for p in [assertion.value, *(assertion.values or [])] if p is not None]
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise AssertionConfigError(
                    f"{name}: regex value must be a string, got {type(pattern).__name__}"
                )
            try:
                compile_regex(pattern)
            except ValueError as exc:
                raise AssertionConfigError(f"{name}: {exc}") from exc
    elif assertion.type == "jsonSchema":
        schema = assertion.value
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise AssertionConfigError(f"{name}: schema is not valid JSON: {exc.msg}") from exc
        if not isinstance(schema, dict | bool):
            raise AssertionConfigError(f"{name}: JSON schema must be an object")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
            _validator(schema)
        except jsonschema.SchemaError as exc:
            raise AssertionConfigError(f"{name}: invalid JSON schema: {exc.message}") from exc
        except ValueError as exc:
            raise AssertionConfigError(f"{name}: invalid JSON schema: {exc}") from exc
    elif assertion.type == "contains" and assertion.values is not None and not assertion.values:
        raise AssertionConfigError(f"{name}: contains needs at least one value")
    elif assertion.type in SAFETY_TYPES:
        from llmops_operator.evals import safety  # cycle: safety builds on Outcome (defined here)

        problem = safety.check_assertion(assertion, name)
        if problem:
            raise AssertionConfigError(problem)


def _select_field(answer: str, path: str | None) -> str:
    """The whole answer, or one field of it parsed as JSON (`a.b.0.c`)."""
    if not path:
        return answer
    value: Any = json.loads(answer)
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(path)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _reference(assertion: Assertion, case: Case) -> str | None:
    """The assertion's own value, else the case field it names (expected by default)."""
    if isinstance(assertion.value, str):
        return assertion.value
    value = case.field_value(assertion.expected_field)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _needles(assertion: Assertion, case: Case) -> list[str]:
    if assertion.values:
        return list(assertion.values)
    reference = _reference(assertion, case)
    return [] if reference is None else [reference]


def check_equals(answer: str, expected: str, case_insensitive: bool = False) -> Outcome:
    a, b = answer.strip(), expected.strip()
    if case_insensitive:
        a, b = a.casefold(), b.casefold()
    return Outcome(a == b, float(a == b), "" if a == b else f"expected {expected[:80]!r}")


def check_contains(
    answer: str, needles: list[str], mode: str = "any", case_insensitive: bool = False
) -> Outcome:
    hay = answer.casefold() if case_insensitive else answer
    hits = [n for n in needles if (n.casefold() if case_insensitive else n) in hay]
    ok = bool(hits) if mode == "any" else len(hits) == len(needles)
    missing = [n for n in needles if n not in hits]
    detail = "" if ok else f"missing {missing[:5]!r}" if mode == "all" else f"none of {needles[:5]!r}"
    return Outcome(ok, float(ok), detail)


def check_regex(
    answer: str, patterns: list[str], mode: str = "any", case_insensitive: bool = False
) -> Outcome:
    """RE2 search: linear in the answer, so no pattern can outlast the gate's timeout."""
    try:
        compiled = [(p, compile_regex(p, case_insensitive)) for p in patterns]
    except ValueError as exc:
        return Outcome.failed_to_evaluate(str(exc))
    hits = [p for p, regex in compiled if regex.search(answer)]
    ok = bool(hits) if mode == "any" else len(hits) == len(patterns)
    return Outcome(ok, float(ok), "" if ok else f"no match for {patterns[:3]!r}")


def _no_remote(uri: str) -> Any:
    """jsonschema never fetches: a `$ref` must point inside the schema itself."""
    raise NoSuchResource(ref=uri)


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance[:80]!r} does not match {pattern[:80]!r}")


def _re2_pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = compile_regex(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _validator(schema: Any) -> Any:
    """A validator for a user's schema: no remote `$ref`, and `pattern` keywords run on RE2."""
    base = jsonschema.validators.validator_for(schema)
    safe = jsonschema.validators.extend(
        base, {"pattern": _re2_pattern, "patternProperties": _re2_pattern_properties}
    )
    if isinstance(schema, dict):
        for pattern in [schema.get("pattern"), *(schema.get("patternProperties") or {})]:
            if isinstance(pattern, str):
                compile_regex(pattern)
    return safe(schema, registry=Registry(retrieve=_no_remote))


def check_json_schema(answer: str, schema: Any) -> Outcome:
    if isinstance(schema, str):
        schema = json.loads(schema)
    try:
        document = json.loads(answer)
    except json.JSONDecodeError as exc:
        return Outcome(False, 0.0, f"answer is not JSON: {exc.msg}")
    except RecursionError:
        return Outcome(False, 0.0, "answer is JSON nested too deeply to check")
    try:
        error = jsonschema.exceptions.best_match(_validator(schema).iter_errors(document))
    except Unresolvable as exc:
        return Outcome.failed_to_evaluate(
            f"schema $ref {exc} cannot be resolved: only local refs are allowed"
        )
    except ValueError as exc:
        return Outcome.failed_to_evaluate(f"schema: {exc}")
    except RecursionError:
        return Outcome.failed_to_evaluate("schema or answer nested too deeply to check")
    if error is None:
        return Outcome(True, 1.0)
    location = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return Outcome(False, 0.0, f"{location}: {error.message}"[:300])


def similarity_score(answer: str, reference: str, case_insensitive: bool = False) -> float:
    """Normalised Indel similarity (rapidfuzz ratio) in 0..1."""
    from rapidfuzz import fuzz  # deferred: only the eval runner scores answers (module doc)

    if case_insensitive:
        answer, reference = answer.casefold(), reference.casefold()
    return fuzz.ratio(answer, reference) / 100.0


@functools.cache
def _rouge() -> Any:
    """rouge_score's RougeScorer for ROUGE-L."""
    from rouge_score import rouge_scorer  # deferred: only the eval runner scores answers (module doc)

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l_score(answer: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens), 0..1."""
    return _rouge().score(reference, answer)["rougeL"].fmeasure


def bleu_score(answer: str, references: list[str]) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) scaled to 0..1."""
    import sacrebleu  # deferred: only the eval runner scores answers (module doc)

    return sacrebleu.sentence_bleu(answer, references).score / 100.0


def check_threshold(score: float, threshold: float, label: str) -> Outcome:
    score = min(1.0, max(0.0, score))  # libraries may return 1.0000000000000004
    ok = score >= threshold
    return Outcome(ok, score, "" if ok else f"{label} {score:.3f} < {threshold:.3f}")


def check_latency(latency_ms: float | None, max_ms: float) -> Outcome:
    if latency_ms is None:
        return Outcome.failed_to_evaluate("no latency measured")
    ok = latency_ms <= max_ms
    detail = "" if ok else f"latency {latency_ms:.0f}ms > {max_ms:.0f}ms"
    return Outcome(ok, float(ok), detail, measured=latency_ms)


JUDGE_SCALE = 10
"""A structured score is an integer 0..JUDGE_SCALE: llama.cpp's and vLLM's grammars enforce integer
bounds while decoding, not number bounds (a 135M judge asked for a number 0..1 answered 100)."""
JUDGE_SYSTEM_PROMPT = (
    "You grade answers written by an AI assistant. Follow the rubric strictly. "
    "Reply with a short justification and end with a final line 'Score: X', "
    "where X is a number between 0 (fails the rubric) and 1 (fully meets it)."
)
JUDGE_STRUCTURED_SYSTEM_PROMPT = (
    "You grade answers written by an AI assistant. Follow the rubric strictly. "
    f"Give a short reason, then a score: an integer from 0 (fails the rubric) to {JUDGE_SCALE} "
    "(fully meets it)."
)
"""The system message when the judge answers in JUDGE_SCHEMA (judge.py swaps it in)."""


def judge_messages(rubric: str, question: str, answer: str, expected: str | None) -> list[dict[str, str]]:
    """The grading conversation sent to the judge (temperature 0)."""
    parts = [f"Rubric:\n{rubric}", f"Question:\n{question}"]
    if expected:
        parts.append(f"Reference answer:\n{expected}")
    parts.append(f"Answer to grade:\n{answer}")
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# The judge's answer is text a model wrote: these run on RE2 (linear time) over its tail only.
_LABELLED = compile_regex(
    rf"(?:score|rating|grade)\s*[\"']?\s*[:=]?\s*\**\s*({_NUMBER})\s*(?:(/|out\s+of)\s*({_NUMBER}))?\s*(%)?",
    case_insensitive=True,
)
_FRACTION = compile_regex(rf"({_NUMBER})\s*(?:/|out\s+of)\s*({_NUMBER})", case_insensitive=True)
_JSON_OBJECT = compile_regex(r"\{[^{}]*\}")
JUDGE_TAIL_CHARS = 16384
"""Only the end of a judge's answer is searched for the score: judges reason first, conclude last."""


def _normalise(value: float, scale: float | None = None, percent: bool = False) -> float:
    if not math.isfinite(value) or value < 0:
        raise JudgeParseError(f"score {value} is not a non-negative number")
    if scale is not None:
        if scale <= 0 or value > scale:
            raise JudgeParseError(f"score {value}/{scale} is out of range")
        return value / scale
    if percent:
        value = value / 100
    if value <= 1:
        return value
    if value <= 10:
        return value / 10
    if value <= 100:
        return value / 100
    raise JudgeParseError(f"score {value} is out of range")


def parse_judge_score(text: str) -> float:
    """Read a 0..1 score from a judge: JSON {"score": x}, "Score: 0.8", "8/10", "80%" or a bare number.

    The last labelled score wins, since judges reason first and conclude last.
    """
    text = text[-JUDGE_TAIL_CHARS:]
    for candidate in reversed(_JSON_OBJECT.findall(text)):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for key, raw in obj.items():
                if key.lower() in ("score", "rating", "grade") and not isinstance(raw, bool):
                    try:
                        return _normalise(float(raw))
                    except (TypeError, ValueError) as exc:
                        raise JudgeParseError(f"score {raw!r} is not a number") from exc
    labelled = _LABELLED.findall(text)
    if labelled:
        number, slash, scale, percent = labelled[-1]
        return _normalise(float(number), float(scale) if slash else None, bool(percent))
    fractions = _FRACTION.findall(text)
    if fractions:
        number, scale = fractions[-1]
        return _normalise(float(number), float(scale))
    bare = text.strip().rstrip(".").strip()
    percent = bare.endswith("%")
    bare = bare.rstrip("%").strip()
    if re.fullmatch(_NUMBER, bare):
        return _normalise(float(bare), percent=percent)
    raise JudgeParseError(f"no score found in judge answer {text[:120]!r}")


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "maxLength": 300},
        "score": {"type": "integer", "minimum": 0, "maximum": JUDGE_SCALE},
    },
    "required": ["reason", "score"],
    "additionalProperties": False,
}
"""What a judge asked for structured output must answer: the reason first, then the score."""
MAX_RAW_JUDGE_CHARS = 4000


def parse_structured_judge(text: str) -> tuple[float, str]:
    """Score (0..1) and reason of an answer to JUDGE_SCHEMA; a score outside 0..JUDGE_SCALE is an
    error, never clipped."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgeParseError(f"structured answer is not JSON ({exc.msg})") from exc
    score = obj.get("score") if isinstance(obj, dict) else None
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise JudgeParseError(f"structured answer has no numeric score (score={score!r})")
    if not 0 <= score <= JUDGE_SCALE:
        raise JudgeScoreOutOfRange(f"score {score} is out of range 0..{JUDGE_SCALE}")
    return score / JUDGE_SCALE, str(obj.get("reason") or "")


def check_judge(judge_answer: str, threshold: float, structured: bool = False) -> Outcome:
    """Grade from the judge's answer; an unreadable answer is an Error that keeps the raw text."""
    reason = ""
    try:
        if structured:
            try:
                score, reason = parse_structured_judge(judge_answer)
            except JudgeScoreOutOfRange:
                raise
            except JudgeParseError:
                score = parse_judge_score(judge_answer)  # e.g. JSON cut short by maxTokens
        else:
            score = parse_judge_score(judge_answer)
    except JudgeParseError as exc:
        raw = judge_answer[:MAX_RAW_JUDGE_CHARS]
        return Outcome(False, 0.0, f"judge: {exc}; the judge answered: {raw}", error=f"judge: {exc}")
    outcome = check_threshold(score, threshold, "judge score")
    if reason:
        return Outcome(outcome.passed, outcome.score, f"{outcome.detail} judge: {reason}".strip())
    return outcome


def _negated(outcome: Outcome, negate: bool) -> Outcome:
    if not negate or outcome.error:
        return outcome
    ok = not outcome.passed
    return Outcome(ok, float(ok), "" if ok else "matched, but must not")


def evaluate(
    assertion: Assertion,
    name: str,
    answer: str,
    case: Case,
    latency_ms: float | None = None,
    judge_answer: str | None = None,
    judge_structured: bool = False,
) -> Outcome:
    """Apply one assertion to one answer; `judge_answer` is the judge's reply for llmJudge
    (`judge_structured` when it was asked for JUDGE_SCHEMA)."""
    if assertion.type == "latency":
        outcome = check_latency(latency_ms, float(assertion.threshold or 0))
    elif assertion.type == "llmJudge":
        outcome = (
            Outcome.failed_to_evaluate("judge gave no answer")
            if judge_answer is None
            else check_judge(judge_answer, threshold_of(assertion), judge_structured)
        )
    elif assertion.type in SAFETY_TYPES:
        from llmops_operator.evals import safety  # cycle: safety builds on Outcome (defined here)

        outcome = safety.evaluate(assertion, answer, case)
    else:
        outcome = _check_text(assertion, name, answer, case)
    return _negated(outcome, assertion.negate)


def _no_reference(assertion: Assertion, name: str, case: Case) -> Outcome:
    return Outcome.failed_to_evaluate(
        f"{name}: no value and case {case.id!r} has no {assertion.expected_field}"
    )


def _check_text(assertion: Assertion, name: str, answer: str, case: Case) -> Outcome:
    """The checks that read the answer's text (or one JSON field of it)."""
    try:
        text = _select_field(answer, assertion.field)
    except (json.JSONDecodeError, KeyError, RecursionError):
        return Outcome(False, 0.0, f"answer has no JSON field {assertion.field!r}")
    if assertion.type == "jsonSchema":
        return check_json_schema(text, assertion.value)
    if assertion.type in ("contains", "regex"):
        needles = [str(v) for v in assertion.values] if assertion.values else _needles(assertion, case)
        if not needles:
            return _no_reference(assertion, name, case)
        check = check_contains if assertion.type == "contains" else check_regex
        return check(text, needles, assertion.mode, assertion.case_insensitive)
    reference = _reference(assertion, case)
    if reference is None:
        return _no_reference(assertion, name, case)
    if assertion.type == "equals":
        return check_equals(text, reference, assertion.case_insensitive)
    if assertion.type == "similarity":
        score = similarity_score(text, reference, assertion.case_insensitive)
        return check_threshold(score, threshold_of(assertion), "similarity")
    if assertion.type == "rougeL":
        return check_threshold(rouge_l_score(text, reference), threshold_of(assertion), "rougeL")
    if assertion.type == "bleu":
        references = [reference, *(assertion.values or [])]
        return check_threshold(bleu_score(text, references), threshold_of(assertion), "bleu")
    raise AssertionConfigError(f"{name}: unknown assertion type {assertion.type!r}")
