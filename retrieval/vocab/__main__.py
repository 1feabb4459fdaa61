"""CLI: `python -m retrieval.vocab [--write]`: are the files generated from the vocabulary up to date?

Without --write it only checks (exit 1 when a file is out of step); with --write it rewrites them. Either way
it says when the search prompt's accepted baseline is for another version of the prompt.
"""

from __future__ import annotations

import argparse

from settings import load_settings


def main(argv: list[str] | None = None) -> int:
    """Checks (or rewrites) the generated parts of the search prompt and its golden cases.

    Args:
        argv: command-line arguments (sys.argv when None).
    """
    from chains.evals.baseline import accepted_path, load_baseline
    from chains.prompting import PromptStore
    from retrieval.vocab.sync import PROMPT, generated_files

    parser = argparse.ArgumentParser(prog="python -m retrieval.vocab", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the files that are out of step")
    args = parser.parse_args(argv)
    settings = load_settings()
    stale = [g for g in generated_files(settings.prompts_dir, settings.prompt_eval_cases_dir) if g.stale]
    for g in stale:
        if args.write:
            g.path.write_text(g.expected, encoding="utf-8")
        print(f"{'rewrote' if args.write else 'out of step'}: {g.path}")
    version = PromptStore(settings.prompts_dir).get(PROMPT).version
    base = load_baseline(accepted_path(settings.prompt_eval_cases_dir, PROMPT)) or {}
    if base.get("version") != version:
        then = base.get("version", "nothing")
        print(f"the accepted baseline of {PROMPT} is for {then}, the prompt is now {version}: accept it again")
        print(f"  .venv/bin/skymarket prompts eval {PROMPT} --accept")
    if stale and not args.write:
        print("run `python -m retrieval.vocab --write`")
    return 1 if (stale and not args.write) or base.get("version") != version else 0


if __name__ == "__main__":
    raise SystemExit(main())
