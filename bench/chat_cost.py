"""Where /chat's CPU goes: the assistant chain in process, with its parts switched off one at a time, against
the bare model call, in the same run (issue 15's /chat overhead target, bench/overhead.py).

    .venv/bin/python -m bench.chat_cost [--rounds 5 --n 60]

Every target answers the same new message per call ("... (ref N)", so no cache answers): (model) the
`ChatOpenAI` the chain calls, given a system prompt of the chain's size and the turn, nothing else; then the
assistant chain (`view="text"`, what /chat serves) with everything on, without the guard's learned layer
(`guard_learned`), without moderation (`describe_moderation="off"`), and without both. Two questions: the
overhead bench's, which searches nothing, and a search ("Who can inspect my roof in Troy?", the shipped index).
Model calls go to bench/upstream.py on 127.0.0.1 (no key, nothing leaves the host). CPU is this process's
(`time.process_time`, every thread: the guard's ONNX run happens in a worker thread), per call, the median of
`--rounds` interleaved rounds; gc is frozen after the warm-up, as the servers are. No HTTP: what the gateway and
LangServe add is bench/overhead.py's (server CPU per request, (c) against (b)).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.overhead import _free_port, _wait_port
from bench.upstream import FIRST_TOKEN_S

__all__ = ["main"]

GENERAL = "How do I list a drone for sale?"
SEARCH = "Who can inspect my roof in Troy?"
PARTS: dict[str, dict[str, Any]] = {
    "everything on": {},
    "without the learned layer": {"guard_learned": False},
    "without moderation": {"describe_moderation": "off"},
    "without both": {"guard_learned": False, "describe_moderation": "off"},
}


def _targets(url: str) -> tuple[Any, dict[str, Any]]:
    from chains.assistant import build_assistant_chain
    from chains.models import build_chat_model
    from chains.prompting import PromptStore
    from retrieval.engine import build_search_engine
    from settings import load_settings

    chains, model = {}, None
    for name, over in PARTS.items():
        over = {"describe_moderation": "local", **over}
        settings = load_settings(openai_api_key="sk-bench-" + "0" * 40, openai_base_url=url,
                                 local_model_enabled=False, ai_max_retries=0, **over)
        engine = build_search_engine(settings=settings)
        engine.warm()
        model = build_chat_model(settings=settings, use_case="chat", local_base_url=None)
        chains[name] = build_assistant_chain(settings=settings, model=model, engine=engine,
                                             prompts=PromptStore(settings.prompts_dir), view="text")
    return model, chains


async def _run(args: argparse.Namespace, model: Any, chains: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    from langchain_core.messages import HumanMessage, SystemMessage

    from bench.overhead import _system_prompt

    ref = itertools.count()
    system = {q: _system_prompt(q) for q in (GENERAL, SEARCH)}

    async def call(target: str, question: str) -> None:
        text = f"{question} (ref {next(ref)})"
        if target == "model":
            await model.ainvoke([SystemMessage(system[question]), HumanMessage(text)])
        else:
            await chains[target].ainvoke({"messages": [{"role": "user", "content": text}]})

    names = ["model", *chains]
    for question in (GENERAL, SEARCH):
        for name in names:
            for _ in range(10):
                await call(name, question)
    gc.collect()
    gc.freeze()
    out: dict[tuple[str, str], list[float]] = {(q, n): [] for q in (GENERAL, SEARCH) for n in names}
    for r in range(args.rounds):
        for question in (GENERAL, SEARCH):
            for name in names[r % len(names):] + names[: r % len(names)]:
                started = time.process_time()
                for _ in range(args.n):
                    await call(name, question)
                out[(question, name)].append((time.process_time() - started) / args.n * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=60, help="calls per target per round")
    args = ap.parse_args()
    port = _free_port()
    up = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_port(port, up, 30):
            raise SystemExit("bench.upstream did not start")
        model, chains = _targets(f"http://127.0.0.1:{port}/v1")
        started = time.time()
        out = asyncio.run(_run(args, model, chains))
    finally:
        up.kill()
    print(f"upstream: first token at {FIRST_TOKEN_S * 1e3:.0f} ms; {args.rounds} rounds x {args.n} calls; "
          f"{time.time() - started:.0f} s\n")
    print("| question | target | CPU ms per call (median) | range | against the model call |")
    print("|---|---|---:|---:|---:|")
    for (question, name), values in out.items():
        med = statistics.median(values)
        base = statistics.median(out[(question, "model")])
        print(f"| {question} | {name} | {med:.2f} | {min(values):.2f}–{max(values):.2f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
