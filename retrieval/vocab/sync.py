"""The files that hold parts generated from the vocabulary and the filters, and how to bring them in step.

    prompts/search_parse.yaml          `values: keys:` what the LLM step's prompt says about each hint
    prompts/cases/search_parse.yaml    `json: &hints {...}` the hints' JSON shape its golden cases check

Both are files, not rendered at run time, so the prompt's version (and `skymarket prompts versions`) changes
when the vocabulary does; its accepted baseline (prompts/cases/accepted/) must then be accepted again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from retrieval.llm_hints import hints_shape, prompt_values

__all__ = ["Generated", "generated_files", "render_cases", "render_prompt"]

PROMPT = "search_parse"
_VALUES = re.compile(r"^values:.*\n(?:[ \t]+.*\n)*", re.MULTILINE)
_SHAPE = re.compile(r"(json: &hints )\{[^}\n]*\}")
_NOTE = "# generated from retrieval/vocab and retrieval/filters by `python -m retrieval.vocab --write`: edit those"


@dataclass(frozen=True)
class Generated:
    """One file with generated parts: what it holds now and what it should hold."""

    path: Path
    current: str
    expected: str

    @property
    def stale(self) -> bool:
        return self.current != self.expected


def render_prompt(text: str) -> str:
    """The prompt file's text with its `values:` block generated (added before `system:` when missing).

    Args:
        text: the prompt file as it is.
    """
    lines = [f"values:  {_NOTE}"]
    for name, value in prompt_values().items():
        lines.append(f"  {name}: |2-")  # the text's own indentation starts 2 columns in: kept as written
        lines += [f"    {line}" for line in value.splitlines()]
    block = "\n".join(lines) + "\n"
    if _VALUES.search(text):
        return _VALUES.sub(lambda _: block, text, count=1)
    return re.sub(r"^system:", lambda m: block + m.group(0), text, count=1, flags=re.MULTILINE)


def render_cases(text: str) -> str:
    """The case file's text with the `json: &hints {...}` shape generated (unchanged without that anchor).

    Args:
        text: the case file as it is.
    """
    shape = ", ".join(f'{k}: "{v}"' if "|" in v else f"{k}: {v}" for k, v in hints_shape().items())
    return _SHAPE.sub(lambda m: m.group(1) + "{" + shape + "}", text, count=1)


def generated_files(prompts_dir: Path, cases_dir: Path) -> list[Generated]:
    """The files with generated parts, each with its current and expected text.

    Args:
        prompts_dir: PROMPTS_DIR.
        cases_dir: PROMPT_EVAL_CASES_DIR.
    """
    out = []
    for path, render in ((prompts_dir / f"{PROMPT}.yaml", render_prompt), (cases_dir / f"{PROMPT}.yaml", render_cases)):
        text = path.read_text(encoding="utf-8")
        out.append(Generated(path, text, render(text)))
    return out
