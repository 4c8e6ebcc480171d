"""The HTML eval report in a real browser: headless Chromium (Debian's) driven by Playwright.

The report is written by `llmops-operator eval --html` against the OpenAI stub, with one answer
carrying a `<script>`. Chromium opens the file offline; the test reads what a person sees: the
failing case first, the filters hiding and showing rows, the script shown as text and never run.
A screenshot goes to .cluster/artifacts/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright

from llmops_sim.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".cluster" / "artifacts"
SCRIPT_ANSWER = "<script>window.__owned = 1; document.title = 'owned'</script> We open at 9."


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed\nFix: bash hack/cluster/deps.sh (installs Debian's chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield browser
        browser.close()


def _write_gate(path: Path) -> None:
    prompt = {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "PromptVersion",
        "metadata": {"name": "bot-v1"},
        "spec": {
            "prompt": "bot",
            "version": 1,
            "messages": [{"role": "user", "content": "{{ question }}"}],
            "variables": [{"name": "question"}],
        },
    }
    cases = [
        {
            "id": "a-refund",
            "vars": {"question": "refund?"},
            "expected": "You can get a refund within 30 days.",
        },
        {"id": "b-shipping", "vars": {"question": "shipping?"}, "expected": "Shipping takes 3 to 5 days."},
        {"id": "c-hours", "vars": {"question": "hours <b>now</b>?"}, "expected": "We open at 9."},
    ]
    gate = {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "EvalGate",
        "metadata": {"name": "g"},
        "spec": {
            "prompt": {"name": "bot"},
            "dataset": {"inline": cases},
            "assertions": [
                {"name": "close", "type": "rougeL", "threshold": 0.6},
                {"name": "no-script", "type": "contains", "value": "<script", "negate": True},
            ],
            "passCriteria": {"passRate": 0.5},
            "retries": 0,
        },
    }
    path.write_text(yaml.safe_dump_all([prompt, gate]))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("report")
    _write_gate(work / "gate.yaml")
    answers = {
        "refund": "You can get a refund within 30 days.",
        "shipping": "Shipping takes 3 to 5 days.",
        "hours": SCRIPT_ANSWER,
    }
    with OpenAIStub(answers=answers) as stub:
        command = [sys.executable, "-m", "llmops_operator.cli.main", "eval", "--endpoint", stub.url,
                   "--gate", str(work / "gate.yaml"), "--html", str(work / "report.html")]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr  # 2 of 3 pass: Passed at passRate 0.5
    return work / "report.html"


def _visible_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "tbody.case", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.id)"
    )


def test_report_in_chromium_failing_first_filters_and_script_as_text(browser: Browser, report: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(report.as_uri())

    assert page.text_content("#phase") == "Passed"
    assert _visible_ids(page) == ["c-hours", "a-refund", "b-shipping"], "the failing case is listed first"
    assert page.get_attribute("tbody.case >> nth=0", "data-status") == "fail"

    answer = page.inner_text("tbody[data-id='c-hours'] pre.answer")
    assert answer == SCRIPT_ANSWER, "the answer's <script> is shown as text"
    assert page.evaluate("typeof window.__owned") == "undefined" and page.title() != "owned"
    assert "hours <b>now</b>?" in page.inner_text("tbody[data-id='c-hours']"), "input markup is text too"

    page.select_option("#f-status", "pass")
    assert _visible_ids(page) == ["a-refund", "b-shipping"] and page.text_content("#shown") == "2"
    page.select_option("#f-status", "failing")
    assert _visible_ids(page) == ["c-hours"]
    page.select_option("#f-status", "all")
    page.select_option("#f-assertion", "no-script")
    assert _visible_ids(page) == ["c-hours"]
    page.select_option("#f-assertion", "")
    assert len(_visible_ids(page)) == 3
    assert errors == [], f"the report's script raised: {errors}"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "eval-report-browser.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    page.close()
