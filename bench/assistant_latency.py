"""What the assistant adds over a search and one model call, and how soon a stream shows the listings.

    .venv/bin/python -m bench.assistant_latency [--rounds 200]

In one process, against bench/upstream.py (an OpenAI-compatible server answering in a fixed 100 ms), on the
shipped index, interleaved request by request so machine noise hits both alike:
  (a) the bar: `SearchEngine.asearch` on the parsed conversation, then one `ChatOpenAI.ainvoke` with a system
      prompt and the question: what wiring an LLM to the search by hand costs;
  (b) the assistant (`/assistant`'s chain): guard, moderation (the local check), the conversation condensed,
      the retriever run, the listings screened and fenced, the prompt, the same model call, the claim check;
  (c) the first chunk of the assistant's stream (the listings) against (d) the search alone.
Reported: p50 and p99 of each, (b) - (a) at p50 (target: at most 5 ms) and (c) - (d) at p50 (target: at most
10 ms). The upstream's fixed answer cannot name a listing, so the assistant makes one attempt (no retry) here;
its text is replaced by the listings' answer, which costs what a kept answer would.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from bench.search_common import machine
from chains.assistant import build_assistant_chain
from chains.assistant.conversation import condense
from chains.local_llm import free_port
from chains.models import build_chat_model
from chains.prompting import PromptStore
from retrieval.engine import build_search_engine
from settings import load_settings

__all__ = ["main"]

CONVERSATIONS = [
    ["Who can inspect my roof in Troy?"],
    ["I need aerial photos of my farm", "it's near Howell"],
    ["drone delivery of parts in Warren under $100"],
    ["thermal scan for heat loss", "the house is in Canton", "which one is the best rated?"],
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(rounds: int, port: int) -> dict[str, list[float]]:
    settings = load_settings(
        openai_api_key="sk-bench-" + "0" * 40, openai_base_url=f"http://127.0.0.1:{port}/v1", local_model_enabled=False,
        describe_moderation="local", assistant_max_attempts=1, ai_max_retries=0,
    )
    engine = build_search_engine(settings=settings)
    engine.warm()
    prompts = PromptStore(settings.prompts_dir)
    chain = build_assistant_chain(settings=settings, model=build_chat_model(settings=settings, use_case="chat",
                                                                            local_base_url=None),
                                  engine=engine, prompts=prompts)
    model = build_chat_model(settings=settings, use_case="chat", local_base_url=None)
    system = "You are SkyMarket's assistant. Recommend drone operators from these listings:\n{listings}"
    times: dict[str, list[float]] = {"bar": [], "assistant": [], "first_chunk": [], "search": []}

    def body(turns: list[str]) -> dict[str, Any]:
        msgs: list[dict[str, str]] = []
        for t in turns:
            msgs += [{"role": "user", "content": t}, {"role": "assistant", "content": "Okay."}]
        return {"messages": msgs[:-1]}

    async def bar(turns: list[str]) -> None:
        it = condense(turns, engine.parser).interpreted
        assert it is not None
        found = await engine.asearch(it.text, interpreted=it, limit=3)
        listings = "\n".join(f"{h.listing.title}, {h.listing.price_from_usd}" for h in found.hits)
        await model.ainvoke([SystemMessage(system.format(listings=listings)), HumanMessage(turns[-1])])

    for i in range(rounds + 8):  # the first rounds warm the caches, clients and pools: not counted
        turns = CONVERSATIONS[i % len(CONVERSATIONS)]
        it = condense(turns, engine.parser).interpreted
        assert it is not None
        measured = i >= 8
        for name in (("bar", "assistant") if i % 2 else ("assistant", "bar")):
            t0 = time.perf_counter()
            if name == "bar":
                await bar(turns)
            else:
                await chain.ainvoke(body(turns))
            if measured:
                times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await engine.asearch(it.text, interpreted=it, limit=3)
        search_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        stream = chain.astream(body(turns)).__aiter__()
        first = await stream.__anext__()
        first_s = time.perf_counter() - t0
        assert "listings" in first
        async for _ in stream:
            pass
        if measured:
            times["search"].append(search_s)
            times["first_chunk"].append(first_s)
    return times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args(argv)
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", str(port)])
    try:
        time.sleep(1.0)
        times = asyncio.run(_run(args.rounds, port))
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    print(f"machine: {machine()}; {args.rounds} rounds; upstream answers in 100 ms")
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        p50, p99, mean = _pct(ms, 0.5), _pct(ms, 0.99), statistics.mean(ms)
        print(f"  {name:<12} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  mean {mean:7.2f}")
    added = (_pct(times["assistant"], 0.5) - _pct(times["bar"], 0.5)) * 1000
    first = (_pct(times["first_chunk"], 0.5) - _pct(times["search"], 0.5)) * 1000
    print(f"assistant - (search + one model call), p50: {added:+.2f} ms (target <= 5)")
    print(f"first listing chunk - search, p50: {first:+.2f} ms (target <= 10)")


if __name__ == "__main__":
    main()
