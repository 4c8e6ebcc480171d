"""Asking an llmJudge for a grade in a shape: structured output first, plain text when refused.

Small judges asked for "Score: X" often answer in prose with no score. Constrained decoding
(OpenAI `response_format` with JUDGE_SCHEMA; vLLM and llama.cpp servers honour it) makes the
answer a JSON object with a bounded score and a reason. An endpoint that rejects the request
shape (HTTP 400/422) is asked in the next style, down to plain text parsed as before; the style
that worked is remembered for the rest of the run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from llmops_operator.evals.assertions import JUDGE_SCHEMA, JUDGE_STRUCTURED_SYSTEM_PROMPT
from llmops_operator.evals.client import RESPONSE_FORMAT_STYLES, ChatClient, EndpointError

REJECTED_REQUEST = frozenset({400, 422})


@dataclass(frozen=True)
class JudgeAnswer:
    text: str
    structured: bool


class Grader:
    """One judge endpoint and model, and the request style it accepts (found by the first case:
    the others wait for it instead of each being refused in turn)."""

    def __init__(self, client: ChatClient, model: str) -> None:
        self.client = client
        self.model = model
        self.styles: list[str | None] = [*RESPONSE_FORMAT_STYLES, None]
        self._settled = False
        self._probing = asyncio.Lock()

    async def grade(self, messages: list[dict[str, str]], max_tokens: int) -> JudgeAnswer:
        """The judge's answer at temperature 0; raises EndpointError when it cannot answer at all."""
        if self._settled:
            return await self._ask(messages, max_tokens)
        async with self._probing:
            answer = await self._ask(messages, max_tokens)
            self._settled = True
            return answer

    async def _ask(self, messages: list[dict[str, str]], max_tokens: int) -> JudgeAnswer:
        parameters = {"temperature": 0, "maxTokens": max_tokens}
        while True:
            style = self.styles[0]
            try:
                if style is None:
                    completion = await self.client.complete(self.model, messages, parameters)
                else:
                    completion = await self.client.complete(
                        self.model, structured_messages(messages), parameters, JUDGE_SCHEMA, style
                    )
            except EndpointError as exc:
                if style is None or exc.status not in REJECTED_REQUEST:
                    raise
                self.styles.pop(0)
                continue
            return JudgeAnswer(completion.content, style is not None)


def structured_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The grading conversation with the system message that describes JUDGE_SCHEMA's scale."""
    if messages and messages[0].get("role") == "system":
        return [{"role": "system", "content": JUDGE_STRUCTURED_SYSTEM_PROMPT}, *messages[1:]]
    return [{"role": "system", "content": JUDGE_STRUCTURED_SYSTEM_PROMPT}, *messages]
