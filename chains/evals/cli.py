"""`skymarket prompts`: evaluate the prompt files against their golden cases.

    skymarket prompts eval [NAME...] [--against accepted|FILE] [--accept] [--repeats K] [--smoke]
    skymarket prompts versions

`eval` runs each case of `prompts/cases/<NAME>.yaml` K times (PROMPT_EVAL_REPEATS) through the real chain with
the current prompt files (the local model by default, OpenAI when OPENAI_API_KEY is set), prints a table,
writes `<prompt>-<version>.html|json` under PROMPT_EVAL_REPORT_DIR, and exits 1 when a case's pass rate is
below PROMPT_EVAL_MIN_PASS_RATE (2 for a malformed case file or bad arguments). `--accept` stores the run as
the new baseline, `prompts/cases/accepted/<NAME>.json` (content hash of the prompt file and its outputs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from langchain_core.runnables import Runnable

from chains.evals.baseline import accepted_path, load_baseline, save_baseline
from chains.evals.cases import load_cases
from chains.evals.checks import Judge
from chains.evals.report import table, write_reports
from chains.evals.runner import run_cases
from chains.evals.targets import product_targets
from chains.prompting import PromptStore
from errors import SkyMarketError
from gateway.pricing import load_prices
from settings import Settings

__all__ = ["evaluate", "main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skymarket prompts", description="evaluate prompt files against golden cases")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="run the golden cases; exit 1 when a case fails")
    ev.add_argument("names", nargs="*", help="prompt names (default: every prompts/cases/*.yaml)")
    ev.add_argument("--against", default="accepted", help="'accepted' (default) or a baseline/report JSON file")
    ev.add_argument("--accept", action="store_true", help="store this run as the new accepted baseline")
    ev.add_argument("--repeats", type=int, default=None, help="runs per case (default PROMPT_EVAL_REPEATS)")
    ev.add_argument("--smoke", action="store_true", help="only the cases marked smoke: true")
    ev.add_argument("--report-dir", type=Path, default=None, help="default PROMPT_EVAL_REPORT_DIR")
    sub.add_parser("versions", help="each prompt file's version and its accepted baseline's")
    return p


def evaluate(
    argv: list[str],
    *,
    settings: Settings,
    targets: dict[str, Runnable],
    judge: Judge | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Runs `skymarket prompts ...` with the given targets (the CLI builds them; tests pass fakes).

    Args:
        argv: the arguments after `prompts`.
        settings: PROMPTS_DIR and the PROMPT_EVAL_* settings.
        targets: prompt name -> its chain (`build_targets`).
        judge: the LLM-as-judge, or None to skip the rubrics.
        out: where the table goes.

    Returns:
        0 when every case passes, 1 when one fails, 2 for bad arguments or a malformed case file.
    """
    args = _parser().parse_args(argv)
    prompts = PromptStore(settings.prompts_dir)
    cases_dir = settings.prompt_eval_cases_dir
    try:
        if args.command == "versions":
            for f in load_cases(cases_dir):
                base = load_baseline(accepted_path(cases_dir, f.prompt)) or {}
                now, then = prompts.get(f.prompt).version, base.get("version", "-")
                out(f"{f.prompt:<16}{now}  accepted {then}" + ("" if now == then else "  (changed: run eval)"))
            return 0
        files = load_cases(cases_dir, args.names or None)
        if args.against != "accepted" and len(files) != 1:
            out("--against FILE compares one prompt: name it")
            return 2
        prices = load_prices(settings.pricing_file, local={settings.local_model_name})
        failed = 0
        for f in files:
            if f.prompt not in targets:
                if not args.names:  # all prompts: one no configured model reads (chat_local with a key) is skipped
                    out(f"{f.prompt}: skipped, no chain reads this prompt on the configured models")
                    continue
                out(f"{f.prompt}: no chain evaluates this prompt (known: {', '.join(sorted(targets))})")
                return 2
            base_path = accepted_path(cases_dir, f.prompt) if args.against == "accepted" else Path(args.against)
            baseline = load_baseline(base_path)
            if baseline is None and args.against != "accepted":
                out(f"{base_path}: no such file")
                return 2
            run = run_cases(
                f, target=targets[f.prompt], version=prompts.get(f.prompt).version, prices=prices,
                repeats=args.repeats or settings.prompt_eval_repeats, min_pass_rate=settings.prompt_eval_min_pass_rate,
                judge=judge, smoke_only=args.smoke, local_model_name=settings.local_model_name,
            )
            html_path, _ = write_reports(run, baseline, args.report_dir or settings.prompt_eval_report_dir)
            out(table(run, baseline))
            if judge is None and any(r.case.judge for r in run.results):
                out("judge rubrics skipped: set PROMPT_EVAL_JUDGE_MODEL (and OPENAI_API_KEY) to grade them")
            out(f"report: {html_path}")
            if args.accept:
                save_baseline(run, accepted_path(cases_dir, f.prompt))
                out(f"accepted {f.prompt} @ {run.version} as the baseline ({len(run.failed())} failing case(s))")
            failed += len(run.failed())
    except SkyMarketError as exc:
        out(f"error: {exc.message}")
        return 2
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    """Entry point of `skymarket prompts` (registered in cli.py)."""
    from settings import load_settings

    if not argv or argv[0] in ("-h", "--help") or argv[0] == "versions":
        return evaluate(argv or ["--help"], settings=load_settings(), targets={})
    try:
        settings = load_settings()
        with product_targets(settings) as (targets, judge):
            return evaluate(argv, settings=settings, targets=targets, judge=judge)
    except SkyMarketError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
