"""The machine checks of a golden case, and the optional LLM-as-judge.

Each check returns a `CheckResult` with a short reason a person can act on ("missing: Part 107").
Mentions are matched case-insensitively on word boundaries; "a|b" accepts either text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable

from chains.prompting import PromptStore

__all__ = ["JUDGE_PROMPT", "CheckResult", "Judge", "build_judge", "run_checks"]

JUDGE_PROMPT = "eval_judge"
# An out-of-area refusal names the service area and declines in so many words.
_AREA = re.compile(r"\bdetroit\s+metro\b", re.IGNORECASE)
_DECLINE = re.compile(
    r"\b(sorry|unfortunately|only|outside|not (?:able|available)|can(?:no|')t|unable|do(?:es)? not (?:serve|cover))\b",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)

Judge = Callable[[str, Any, str], "CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str = ""


def _pattern(phrase: str) -> str:
    """Word boundaries only where the phrase starts or ends with a word character ("$" matches "$250")."""
    left = r"(?<!\w)" if re.match(r"\w", phrase) else ""
    right = r"(?!\w)" if re.search(r"\w$", phrase) else ""
    return left + re.escape(phrase) + right


def _found(text: str, phrase: str) -> bool:
    return any(re.search(_pattern(alt.strip()), text, re.IGNORECASE) for alt in phrase.split("|") if alt.strip())


def _json_type(value: Any, kind: str) -> bool:
    return {
        "string": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "list": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }[kind]


def _json_shape(text: str, shape: dict[str, str]) -> CheckResult:
    try:
        data = json.loads(_FENCE.sub("", text))
    except json.JSONDecodeError as exc:
        return CheckResult("json", False, f"not JSON ({exc.msg} at char {exc.pos})")
    if not isinstance(data, dict):
        return CheckResult("json", False, f"expected an object, got {type(data).__name__}")
    problems = []
    for key, spec in shape.items():
        if key not in data:
            problems.append(f"{key} missing")
        elif not any(_json_type(data[key], k) for k in spec.split("|")):
            problems.append(f"{key} is {type(data[key]).__name__}, want {spec}")
    return CheckResult("json", not problems, "; ".join(problems))


def run_checks(output: str, checks: dict[str, Any]) -> list[CheckResult]:
    """Evaluates a case's checks on one output.

    Args:
        output: the chain's output as text (JSON text for structured outputs).
        checks: the case's validated `checks` mapping.
    """
    out: list[CheckResult] = []
    if "must_mention" in checks:
        missing = [p for p in checks["must_mention"] if not _found(output, p)]
        out.append(CheckResult("must_mention", not missing, "missing: " + ", ".join(missing) if missing else ""))
    if "must_not_mention" in checks:
        found = [p for p in checks["must_not_mention"] if _found(output, p)]
        out.append(CheckResult("must_not_mention", not found, "mentions: " + ", ".join(found) if found else ""))
    if "max_words" in checks:
        n = len(output.split())
        out.append(CheckResult("max_words", n <= checks["max_words"], f"{n} words > {checks['max_words']}"
                               if n > checks["max_words"] else ""))
    if "json" in checks:
        out.append(_json_shape(output, checks["json"]))
    if checks.get("refuses_out_of_area"):
        area, decline = bool(_AREA.search(output)), bool(_DECLINE.search(output))
        reason = "" if area and decline else ("does not name Detroit Metro" if not area else "does not decline")
        out.append(CheckResult("refuses_out_of_area", area and decline, reason))
    return out


def build_judge(*, model: Runnable, prompts: PromptStore, prompt_name: str = JUDGE_PROMPT) -> Judge:
    """An LLM-as-judge: asks `model` whether an output meets a rubric (prompts/eval_judge.yaml).

    Args:
        model: the judge's chat model (JUDGE_MODEL); never the model being evaluated.
        prompts: the prompt store holding the judge's prompt.
        prompt_name: the judge's prompt file.
    """

    def judge(rubric: str, case_input: Any, output: str) -> CheckResult:
        system, human = prompts.get(prompt_name).render(
            rubric=rubric, case_input=json.dumps(case_input, ensure_ascii=False), output=output
        )
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(human or output)]
        reply = model.invoke(messages)
        text = str(getattr(reply, "content", reply)).strip()
        verdict = text.split(":", 1)[0].strip().upper()
        return CheckResult("judge", verdict == "PASS", text[:200] if verdict != "PASS" else "")

    return judge
