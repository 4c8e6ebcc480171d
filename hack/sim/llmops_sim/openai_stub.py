"""A small OpenAI-compatible server that stands in for a real model's answers.

Inference engines (vLLM, TensorRT-LLM, ONNX Runtime) cannot run here: there are no
GPUs and no weights. Evaluation gates still need something that answers chat
completions, so this stub answers from a table instead of a model. It is a test
double, not a model: its answers are only as good as the table it is given.

Modes (switchable while running, from Python or with `POST /control`):
  good   answer from the table (first key found, case-insensitively, in the last user
         message); otherwise `defaultAnswer`, otherwise echo the last user message
  bad    wrong and rude answers
  error  every request gets HTTP 500 (and /health 503)
  judge  answer like a grading model: "... Score: <judgeScore>", or {"reason", "score"} JSON with
         judgeScore (0..1) put on the requested schema's integer scale
         when asked for structured output (response_format)
  slow   good answers after `delayMs` (delay also combines with any mode)
  flaky  good answers, but a `flakyRate` share of requests gets 429 or 500

`responseFormats` lists the response_format types accepted (default json_schema and json_object);
a request asking for another gets HTTP 400, as from a server without structured output.

Endpoints: POST /v1/chat/completions, GET /v1/models, GET /health, GET|POST /control.
Routes: `/r/<route>/v1/...` answers with the settings of `<route>` (see `configure_route`), so one
stub can play several revisions, e.g. a good canary and a bad one, behind an endpoint template
such as `http://127.0.0.1:PORT/r/{revision}/v1`.

    python -m llmops_sim.openai_stub --port 8001 --mode good --answers answers.json
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("good", "bad", "error", "judge", "slow", "flaky")
BAD_ANSWER = "I don't know and I don't care. Figure it out yourself."


@dataclass
class StubState:
    """What the stub answers; guarded by the server's lock."""

    mode: str = "good"
    answers: dict[str, str] = field(default_factory=dict)
    default_answer: str | None = None
    delay_ms: float = 0.0
    flaky_rate: float = 0.0
    judge_score: float = 0.9
    response_formats: list[str] = field(default_factory=lambda: ["json_schema", "json_object"])
    model: str = "stub-model"
    requests: int = 0
    last_requests: list[dict[str, Any]] = field(default_factory=list)

    def update(self, changes: dict[str, Any]) -> None:
        names = {
            "mode": "mode",
            "answers": "answers",
            "defaultAnswer": "default_answer",
            "delayMs": "delay_ms",
            "flakyRate": "flaky_rate",
            "judgeScore": "judge_score",
            "responseFormats": "response_formats",
            "model": "model",
        }
        for key, value in changes.items():
            attr = names.get(key, key)
            if attr not in names.values():
                raise ValueError(f"unknown control field {key!r}")
            if attr == "mode" and value not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}")
            setattr(self, attr, value)

    def view(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "answers": self.answers,
            "defaultAnswer": self.default_answer,
            "delayMs": self.delay_ms,
            "flakyRate": self.flaky_rate,
            "judgeScore": self.judge_score,
            "responseFormats": self.response_formats,
            "model": self.model,
            "requests": self.requests,
        }


def pick_answer(state: StubState, messages: list[dict[str, Any]]) -> str:
    """The table answer for the last user message (longest matching key first)."""
    last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    lowered = last_user.lower()
    for key in sorted(state.answers, key=len, reverse=True):
        if key.lower() in lowered:
            return state.answers[key]
    return state.default_answer if state.default_answer is not None else last_user


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the bench sends thousands
        return

    def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        return json.loads(raw or b"{}")

    def _route(self) -> str | None:
        """Strip a `/r/<route>` prefix from the path; return the route."""
        if self.path.startswith("/r/"):
            route, _, rest = self.path[3:].partition("/")
            self.path = "/" + rest
            return route
        return None

    def do_GET(self) -> None:
        stub = self.server.stub
        self._route()
        if self.path == "/health":
            with stub.lock:
                healthy = stub.state.mode != "error"
            self._send(200 if healthy else 503, {"status": "ok" if healthy else "error"})
        elif self.path in ("/v1/models", "/models"):
            with stub.lock:
                model = stub.state.model
            self._send(
                200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "stub"}]}
            )
        elif self.path == "/control":
            with stub.lock:
                self._send(200, stub.state.view())
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        stub = self.server.stub
        route = self._route()
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError):
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        if self.path == "/control":
            try:
                stub.configure(**body)
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": {"message": str(exc)}})
                return
            with stub.lock:
                self._send(200, stub.state.view())
        elif self.path in ("/v1/chat/completions", "/chat/completions"):
            code, payload, headers = stub.answer(body, route)
            self._send(code, payload, headers)
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    stub: OpenAIStub


class OpenAIStub:
    """The stub server, runnable in a background thread from tests and benchmarks."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", seed: int = 0, **settings: Any) -> None:
        self.lock = threading.Lock()
        self.state = StubState()
        self.state.update(settings)
        self.routes: dict[str, StubState] = {}
        self._random = random.Random(seed)
        self._server = _StubServer((host, port), _Handler)
        self._server.stub = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL of the OpenAI API (…/v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def configure(self, **changes: Any) -> None:
        """Change mode, answers, delayMs, flakyRate, judgeScore, defaultAnswer or model while running."""
        with self.lock:
            self.state.update(changes)

    @property
    def requests(self) -> int:
        with self.lock:
            return self.state.requests

    @property
    def last_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.state.last_requests)

    def configure_route(self, route: str, **changes: Any) -> None:
        """Settings for requests under `/r/<route>/`; starts from the stub's defaults."""
        with self.lock:
            state = self.routes.get(route)
            if state is None:
                state = StubState(
                    mode=self.state.mode,
                    answers=dict(self.state.answers),
                    default_answer=self.state.default_answer,
                    judge_score=self.state.judge_score,
                    model=self.state.model,
                )
                self.routes[route] = state
            state.update(changes)

    def answer(
        self, body: dict[str, Any], route: str | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, JSON body and headers for one chat completions request."""
        with self.lock:
            state = self.routes.get(route, self.state) if route else self.state
            self.state.requests += 1
            if state is not self.state:
                state.requests += 1
            state.last_requests = [*state.last_requests[-99:], body]
            mode, delay_ms = state.mode, state.delay_ms
            flaky = self._random.random() < state.flaky_rate
            flaky_code = 429 if self._random.random() < 0.5 else 500
            wanted_format = (body.get("response_format") or {}).get("type")
            if wanted_format is not None and wanted_format not in state.response_formats:
                return 400, {"error": {"message": f"response_format {wanted_format} unsupported"}}, {}
            if mode == "judge" and wanted_format is not None:
                content = json.dumps({"reason": "graded against the rubric", "score": _on_scale(state, body)})
            elif mode == "judge":
                content = f"The answer was graded against the rubric.\nScore: {state.judge_score}"
            elif mode == "bad":
                content = BAD_ANSWER
            else:
                content = pick_answer(state, body.get("messages") or [])
            model = body.get("model") or state.model
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if mode == "error":
            return 500, {"error": {"message": "stub in error mode", "type": "server_error"}}, {}
        if flaky:
            return (
                flaky_code,
                {"error": {"message": "stub flaked", "type": "overloaded"}},
                {"Retry-After": "0"},
            )
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        completion_tokens = len(content.split())
        return (
            200,
            {
                "id": f"chatcmpl-stub-{self.state.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )

    def start(self) -> OpenAIStub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _on_scale(state: StubState, body: dict[str, Any]) -> float | int:
    """judgeScore as a judge obeying the requested schema writes it: an integer 0..maximum when
    the schema asks for one (so judgeScore 0.9 is 9 of 10, and 7 is an out-of-range 70)."""
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}
    score = (schema.get("properties") or {}).get("score") or {}
    if score.get("type") == "integer":
        return round(state.judge_score * score.get("maximum", 1))
    return state.judge_score


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="OpenAI-compatible stub standing in for a model (tests only)."
    )
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", choices=MODES, default="good")
    parser.add_argument("--answers", help="JSON file: {substring of the user message: answer}")
    parser.add_argument("--default-answer")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--flaky-rate", type=float, default=0.0)
    parser.add_argument("--judge-score", type=float, default=0.9)
    parser.add_argument("--model", default="stub-model")
    args = parser.parse_args(argv)
    answers: dict[str, str] = {}
    if args.answers:
        with open(args.answers, encoding="utf-8") as handle:
            answers = json.load(handle)
    delay = args.delay_ms or (500.0 if args.mode == "slow" else 0.0)
    flaky = args.flaky_rate or (0.2 if args.mode == "flaky" else 0.0)
    stub = OpenAIStub(
        port=args.port,
        host=args.host,
        mode=args.mode,
        answers=answers,
        defaultAnswer=args.default_answer,
        delayMs=delay,
        flakyRate=flaky,
        judgeScore=args.judge_score,
        model=args.model,
    )
    print(f"openai stub on http://{args.host}:{stub.port}/v1 mode={args.mode}", flush=True)
    try:
        stub._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stub._server.server_close()


if __name__ == "__main__":
    main()
