"""Prompt evaluation: golden cases run through the real chains, compared with the last accepted version.

    cases.py    prompts/cases/<prompt>.yaml: cases and their checks (errors name the file and line)
    checks.py   the machine checks (mentions, words, JSON shape, out-of-area refusal) and the optional judge
    targets.py  how a case reaches a chain: chat, describe, search's query understanding
    runner.py   runs each case K times, with tokens, cost (the usage callback) and latency; baselines
    report.py   the console table, the JSON report and the HTML side-by-side report
    cli.py      `skymarket prompts eval [NAME...] [--against accepted|FILE] [--accept]`
"""

from __future__ import annotations

from chains.evals.cases import Case, CaseError, CaseFile, load_case_file, load_cases
from chains.evals.runner import CaseResult, EvalRun, run_cases

__all__ = ["Case", "CaseError", "CaseFile", "CaseResult", "EvalRun", "load_case_file", "load_cases", "run_cases"]
