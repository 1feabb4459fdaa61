"""Runs golden cases through a target K times and measures each run: checks, tokens, cost, latency.

Tokens and cost come from the gateway's `UsageCallback` (the price table in data/pricing.json), attached to
each run with its own `RequestContext`, exactly as for a served request. A run that raises is a failed run
whose output is the error's type and message; it never stops the evaluation.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import Runnable

from chains.evals.cases import Case, CaseFile
from chains.evals.checks import CheckResult, Judge, run_checks
from gateway import context
from gateway.pricing import PriceTable
from gateway.usage import UsageCallback

__all__ = ["CaseResult", "EvalRun", "Sample", "run_cases"]


@dataclass
class Sample:
    """One run of one case."""

    output: str
    checks: list[CheckResult]
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    latency_ms: float = 0.0
    models: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)


@dataclass
class CaseResult:
    case: Case
    samples: list[Sample]

    @property
    def pass_rate(self) -> float:
        return sum(s.passed for s in self.samples) / len(self.samples) if self.samples else 0.0

    def check_rates(self) -> dict[str, tuple[int, int]]:
        """Check name -> (runs passed, runs); an errored run fails every check."""
        names = list(dict.fromkeys(c.name for s in self.samples for c in s.checks))
        return {n: (sum(any(c.name == n and c.passed for c in s.checks) for s in self.samples), len(self.samples))
                for n in names}

    def reasons(self) -> list[str]:
        out = [f"error: {s.error}" for s in self.samples if s.error]
        out += [f"{c.name}: {c.reason}" for s in self.samples for c in s.checks if not c.passed]
        return list(dict.fromkeys(out))


@dataclass
class EvalRun:
    """The outcome of one prompt's cases."""

    prompt: str
    version: str
    repeats: int
    min_pass_rate: float
    results: list[CaseResult]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if r.pass_rate < self.min_pass_rate]

    def to_json(self) -> dict[str, Any]:
        """The run as data: the report's JSON, and (with `--accept`) the baseline."""
        return {
            "prompt": self.prompt,
            "version": self.version,
            "created_at": self.created_at,
            "repeats": self.repeats,
            "min_pass_rate": self.min_pass_rate,
            "passed": not self.failed(),
            "models": sorted({m for r in self.results for s in r.samples for m in s.models}),
            "cases": {
                r.case.id: {
                    "pass_rate": round(r.pass_rate, 4),
                    "checks": {n: list(v) for n, v in r.check_rates().items()},
                    "reasons": r.reasons(),
                    "outputs": [s.output for s in r.samples],
                    "input_tokens": sum(s.input_tokens for s in r.samples),
                    "output_tokens": sum(s.output_tokens for s in r.samples),
                    "cost_usd": round(sum(s.cost_usd for s in r.samples), 8),
                    "priced": all(s.priced for s in r.samples),
                    "latency_ms": round(sum(s.latency_ms for s in r.samples) / max(len(r.samples), 1), 1),
                }
                for r in self.results
            },
        }


def _sample(case: Case, target: Runnable, usage: UsageCallback, judge: Judge | None, local_name: str | None) -> Sample:
    ctx = context.RequestContext(request_id=f"eval-{uuid.uuid4().hex[:12]}", route="eval", endpoint="invoke")
    token = context.bind(ctx)
    started = time.perf_counter()
    try:
        output, error = str(target.invoke(case.input, config={"callbacks": [usage]})), None
    except Exception as exc:  # any failure is this run's result, reported, never the end of the evaluation
        output, error = "", f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        context.reset(token)
    latency = (time.perf_counter() - started) * 1000.0
    checks = run_checks(output, case.checks) if error is None else []
    if judge is not None and case.judge and error is None:
        try:
            checks.append(judge(case.judge, case.input, output))
        except Exception as exc:  # a judge that fails is a failed check, not a crashed run
            checks.append(CheckResult("judge", False, f"judge failed: {type(exc).__name__}"))
    answered = ctx.answered
    return Sample(
        output=output, checks=checks, error=error, latency_ms=latency,
        input_tokens=sum(c.input_tokens for c in answered), output_tokens=sum(c.output_tokens for c in answered),
        cost_usd=sum(c.cost_usd for c in answered), priced=all(c.priced for c in answered),
        # llama.cpp names itself by its model file's path: the configured name reads better and is portable
        models=list(dict.fromkeys(local_name if c.is_local and local_name else c.model for c in answered)),
    )


def run_cases(
    cases: CaseFile,
    *,
    target: Runnable,
    version: str,
    prices: PriceTable,
    repeats: int = 1,
    min_pass_rate: float = 1.0,
    judge: Judge | None = None,
    smoke_only: bool = False,
    local_model_name: str | None = None,
) -> EvalRun:
    """Runs every case of a file `repeats` times through `target`.

    Args:
        cases: the prompt's case file.
        target: the prompt's chain (`chains.evals.targets.build_targets`).
        version: the prompt file's version (content hash) under evaluation.
        prices: the price table, for each run's cost.
        repeats: runs per case (PROMPT_EVAL_REPEATS); the pass rate is over these.
        min_pass_rate: a case whose pass rate is below this fails the evaluation.
        judge: the LLM-as-judge for cases with a `judge` rubric; None skips those rubrics.
        smoke_only: run only the cases marked `smoke: true`.
        local_model_name: the name reports give the local model (LOCAL_MODEL_NAME).
    """
    usage = UsageCallback(prices)
    results = [
        CaseResult(case=case, samples=[_sample(case, target, usage, judge, local_model_name) for _ in range(repeats)])
        for case in cases.cases
        if case.smoke or not smoke_only
    ]
    return EvalRun(prompt=cases.prompt, version=version, repeats=repeats, min_pass_rate=min_pass_rate,
                   results=results)
