"""What an evaluation shows: a console table, a JSON report for machines, an HTML report for people.

The HTML report puts each case's outputs next to the baseline's (the accepted version, or `--against FILE`),
with the words that changed highlighted (difflib): removed words struck through on the left, new words
marked on the right. Both prompt versions are named at the top.
"""

from __future__ import annotations

import difflib
import html
import json
from pathlib import Path
from typing import Any

from chains.evals.runner import EvalRun

__all__ = ["diff_html", "render_html", "table", "write_reports"]

_CSS = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:6px;vertical-align:top;text-align:left}th{background:#f3f3f3}
.pass{color:#0a0}.fail{color:#c00;font-weight:bold}del{background:#fdd}ins{background:#dfd;text-decoration:none}
.out{white-space:pre-wrap;width:50%}code{background:#f3f3f3;padding:1px 4px}
"""


def table(run: EvalRun, baseline: dict[str, Any] | None = None) -> str:
    """The console table: case, pass rate (and the baseline's), each check, tokens, cost, latency."""
    data = run.to_json()
    base_cases = (baseline or {}).get("cases", {})
    head = f"{run.prompt} @ {run.version}"
    if baseline is not None:
        head += f"  (against {baseline.get('version', '?')})"
    rows = [("case", "pass", "was", "checks", "tokens", "cost $", "ms")]
    for cid, c in data["cases"].items():
        was = base_cases.get(cid, {}).get("pass_rate")
        checks = " ".join(f"{n}={p}/{t}" for n, (p, t) in c["checks"].items()) or "-"
        rows.append((cid, f"{c['pass_rate']:.0%}", "-" if was is None else f"{was:.0%}", checks,
                     str(c["input_tokens"] + c["output_tokens"]),
                     f"{c['cost_usd']:.6f}" + ("" if c["priced"] else "?"), f"{c['latency_ms']:.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head] + ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for r in run.failed():
        lines.append(f"FAIL {r.case.id}: " + "; ".join(r.reasons()[:3]))
    lines.append(f"{len(run.results) - len(run.failed())}/{len(run.results)} cases at or above "
                 f"{run.min_pass_rate:.0%} over {run.repeats} run(s) each")
    return "\n".join(lines)


def diff_html(old: str, new: str) -> tuple[str, str]:
    """Both texts as HTML, words removed from `old` in <del>, words new in `new` in <ins>."""
    a, b = old.split(), new.split()
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        old_part, new_part = html.escape(" ".join(a[i1:i2])), html.escape(" ".join(b[j1:j2]))
        if op == "equal":
            left.append(old_part)
            right.append(new_part)
            continue
        if old_part:
            left.append(f"<del>{old_part}</del>")
        if new_part:
            right.append(f"<ins>{new_part}</ins>")
    return " ".join(left), " ".join(right)


def render_html(run: EvalRun, baseline: dict[str, Any] | None = None) -> str:
    """The side-by-side report of one prompt's run against its baseline (or alone, when there is none)."""
    data = run.to_json()
    base_version = html.escape(str((baseline or {}).get("version", "none")))
    base_cases = (baseline or {}).get("cases", {})
    out = [f"<!doctype html><meta charset=utf-8><title>{html.escape(run.prompt)} prompt evaluation</title>",
           f"<style>{_CSS}</style><h1>Prompt <code>{html.escape(run.prompt)}</code></h1>",
           f"<p>Baseline version <code>{base_version}</code> &rarr; current version <code>"
           f"{html.escape(run.version)}</code>; {run.repeats} run(s) per case; models: "
           f"{html.escape(', '.join(data['models']) or '-')}; {run.created_at}</p>"]
    for cid, c in data["cases"].items():
        base = base_cases.get(cid, {})
        ok = c["pass_rate"] >= run.min_pass_rate
        was = base.get("pass_rate")
        out.append(f"<h2>{html.escape(cid)} <span class={'pass' if ok else 'fail'}>{c['pass_rate']:.0%}</span>"
                   + (f" <small>(was {was:.0%})</small>" if was is not None else "") + "</h2>")
        checks = ", ".join(f"{html.escape(n)} {p}/{t}" for n, (p, t) in c["checks"].items())
        out.append(f"<p>Checks (runs passed): {checks or '-'}. All runs: {c['input_tokens']} input + "
                   f"{c['output_tokens']} output tokens, ${c['cost_usd']:.6f}; {c['latency_ms']:.0f} ms per run.</p>")
        if c["reasons"]:
            out.append("<ul>" + "".join(f"<li class=fail>{html.escape(r)}</li>" for r in c["reasons"]) + "</ul>")
        out.append(f"<table><tr><th>baseline <code>{base_version}</code></th>"
                   f"<th>current <code>{html.escape(run.version)}</code></th></tr>")
        old_outputs: list[str] = list(base.get("outputs") or [])
        for i, new in enumerate(c["outputs"]):
            old = old_outputs[i] if i < len(old_outputs) else (old_outputs[0] if old_outputs else "")
            left, right = diff_html(old, new)
            out.append(f"<tr><td class=out>{left or '<i>(none)</i>'}</td><td class=out>{right}</td></tr>")
        out.append("</table>")
    return "\n".join(out) + "\n"


def write_reports(run: EvalRun, baseline: dict[str, Any] | None, folder: Path) -> tuple[Path, Path]:
    """Writes `<prompt>-<version>.html` and `.json` under `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{run.prompt}-{run.version}"
    data = run.to_json()
    data["baseline_version"] = (baseline or {}).get("version")
    html_path, json_path = stem.with_suffix(".html"), stem.with_suffix(".json")
    html_path.write_text(render_html(run, baseline), encoding="utf-8")
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return html_path, json_path
