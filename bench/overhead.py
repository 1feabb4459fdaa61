"""What the service adds over calling the model directly (issue 8): latency, throughput, server CPU.

    .venv/bin/python -m bench.overhead [--duration 2.5 --rounds 3 --concurrency 1,16,64 --no-litellm]

Against one upstream with a fixed latency (bench/upstream.py: first token at 50 ms, the whole answer at
100 ms), in the same run, interleaved in short phases (a, b, c, d, then b, c, d, a, ...) so machine noise
hits all alike:
  (a) `ChatOpenAI` called directly, from its own client process;
  (b) a bare LangServe route wrapping that same `ChatOpenAI` (bench/bare_app.py), one uvicorn worker;
  (c) our `/chat` from `server.create_app(settings)` with everything on, one uvicorn worker;
  (d) LiteLLM's proxy, one worker, from a separate venv (`--litellm-python`), when it starts offline.
By default (a), (b) and (d) send the same system prompt (c) adds (`--system-prompt same`), so every target
makes the same request to the model: the OpenAI SDK's request transform alone costs ~0.7 ms of CPU per
extra message, which is the model request's cost, not the service's. `--system-prompt none` sends them
the user turn only.
For invoke and for streams (time to the first token), at each concurrency: p50/p99 added ms over the
upstream's fixed latency, throughput, the server's CPU ms per request (/proc/<pid>/stat, process tree),
and the load generator's CPU (bench/loadgen.py). Servers get `gc.freeze()` after the warm-up (SIGUSR1).
Traffic goes to 127.0.0.1 only; the servers' proxies point at a closed port so nothing leaves the host.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bare_app import BENCH_API_KEY
from bench.overhead_report import aggregate, render
from bench.upstream import FIRST_TOKEN_S, TOTAL_S

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TEXT = "How do I list a drone for sale?"
_TICK = os.sysconf("SC_CLK_TCK")
_LITELLM_KEY = "sk-bench-master-" + "0123456789abcdef0123456789abcdef"  # auth on, as in ours
_LITELLM_BOOT = ("import gc, signal, sys\n"
                 "signal.signal(signal.SIGUSR1, lambda *_: (gc.collect(), gc.freeze()))\n"
                 "from litellm.proxy.proxy_cli import run_server\n"
                 "sys.argv = ['litellm'] + sys.argv[1:]\nrun_server()\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError):
            continue
    return total / _TICK


def _system_prompt(question: str) -> str:
    """A system prompt of the size (c) sends: the chat prompt file, rendered as chains/assistant renders it."""
    import datetime as dt

    from chains.guard import make_canary
    from chains.prompting import PromptStore

    # The bench's question asks nothing to search: the assistant's prompt carries no listings for it.
    system, _ = PromptStore(ROOT / "prompts").get("chat").render(
        today=dt.date.today().isoformat(), canary=make_canary(), listings="(none)", request="nothing specific yet",
        question=question,
    )
    return system


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    env.pop("OPENAI_API_KEY", None)
    return env


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.tmp = args, Path(tempfile.mkdtemp(prefix="skymarket-overhead-"))
        self.procs: list[subprocess.Popen[Any]] = []
        self.targets: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []

    def spawn(self, name: str, cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stderr=log, **kw)
        self.procs.append(proc)
        return proc

    def server(self, name: str, cmd: list[str], port: int, timeout: float = 60) -> subprocess.Popen[Any] | None:
        proc = self.spawn(name, cmd, stdout=subprocess.DEVNULL)
        if not _wait_port(port, proc, timeout):
            self.notes.append(f"({name}) did not start within {timeout:.0f} s: see {self.tmp / (name + '.log')}")
            return None
        return proc

    def loadgen(self, name: str, extra: list[str]) -> subprocess.Popen[Any]:
        proc = self.spawn(name, [PY, "-m", "bench.loadgen", *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, bufsize=1)
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # {"ready": true}
        return proc

    def start(self) -> None:
        up_port = _free_port()
        self.upstream = self.server("upstream", [PY, "-m", "bench.upstream", "--port", str(up_port)], up_port)
        url = f"http://127.0.0.1:{up_port}/v1"
        self.raw, self.direct = self.loadgen("loadgen", []), self.loadgen("direct", ["--direct", url])
        text = self.args.text if self.args.same_text else f"{self.args.text} (ref #N#)"
        msgs = [{"role": "user", "content": text}]
        system = _system_prompt(text) if self.args.system_prompt == "same" else None
        peer_msgs = ([{"role": "system", "content": system}] if system else []) + msgs
        self.targets["a"] = {"proc": None, "system": system}
        port = _free_port()
        if proc := self.server("b", [PY, "-m", "bench.bare_app", "bare", "--port", str(port), "--upstream", url], port):
            lc = ([{"type": "system", "content": system}] if system else []) + [{"type": "human", "content": text}]
            self.targets["b"] = {"proc": proc, "port": port, "path": "/chat/{mode}", "body": {"input": lc}}
        port = _free_port()
        cmd = [PY, "-m", "bench.bare_app", "ours", "--port", str(port), "--upstream", url, "--data-dir", str(self.tmp)]
        if proc := self.server("c", cmd, port):
            key = (self.tmp / "api-key").read_text().strip()
            self.targets["c"] = {"proc": proc, "port": port, "path": "/chat/{mode}",
                                 "headers": {"authorization": f"Bearer {key}"}, "body": {"input": {"messages": msgs}}}
        litellm = Path(self.args.litellm_python)
        if self.args.no_litellm or not litellm.exists():
            self.notes.append(f"(d) LiteLLM skipped: {'--no-litellm' if self.args.no_litellm else f'no {litellm}'}")
            return
        port, cfg = _free_port(), self.tmp / "litellm.yaml"
        cfg.write_text(json.dumps({"model_list": [{"model_name": "gpt-4o-mini", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": url, "api_key": BENCH_API_KEY}}],
            "litellm_settings": {"telemetry": False}, "general_settings": {"master_key": _LITELLM_KEY}}))
        cmd = [str(litellm), "-c", _LITELLM_BOOT, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1"]
        if proc := self.server("d", cmd, port, timeout=120):
            self.targets["d"] = {"proc": proc, "port": port, "path": "/v1/chat/completions", "openai": True,
                                 "headers": {"authorization": f"Bearer {_LITELLM_KEY}"},
                                 "body": {"model": "gpt-4o-mini", "messages": peer_msgs, "max_tokens": 1000,
                                          "temperature": 0.7}}

    def phase(self, name: str, mode: str, conc: int, duration: float) -> dict[str, Any]:
        t = self.targets[name]
        cmd: dict[str, Any] = {"stream": mode == "stream", "concurrency": conc, "duration": duration,
                               "max_requests": self.args.max_requests}
        if name == "a":
            cmd["system"] = t.get("system")
        else:
            body = dict(t["body"])
            if t.get("openai") and mode == "stream":
                body |= {"stream": True, "stream_options": {"include_usage": True}}
            cmd |= {"port": t["port"], "path": t["path"].format(mode=mode), "body": body,
                    "headers": t.get("headers", {}), "unique": not self.args.same_text}
        gen = self.direct if name == "a" else self.raw
        pid = t["proc"].pid if t["proc"] else None
        cpu0, up0 = (_tree_cpu_s(pid) if pid else 0.0), _tree_cpu_s(self.upstream.pid)  # type: ignore[union-attr]
        assert gen.stdin is not None and gen.stdout is not None
        gen.stdin.write(json.dumps(cmd) + "\n")
        out: dict[str, Any] = json.loads(gen.stdout.readline())
        out["server_cpu_s"] = (_tree_cpu_s(pid) - cpu0) if pid else None
        out["upstream_cpu_s"] = _tree_cpu_s(self.upstream.pid) - up0  # type: ignore[union-attr]
        out["loadavg"] = os.getloadavg()[0]
        return out

    def run(self) -> dict[str, Any]:
        order = [n for n in "abcd" if n in self.targets]
        for name in order:  # warm-up: imports, connection pools, tiktoken, first-call caches
            for mode in ("invoke", "stream"):
                self.phase(name, mode, 8, self.args.warmup)
            if self.targets[name]["proc"]:
                os.kill(self.targets[name]["proc"].pid, signal.SIGUSR1)
        time.sleep(1.0)
        phases: list[dict[str, Any]] = []
        for conc in self.args.concurrency:
            for mode in ("invoke", "stream"):
                for r in range(self.args.rounds):
                    for name in order[r % len(order):] + order[:r % len(order)]:
                        out = self.phase(name, mode, conc, self.args.duration)
                        phases.append({"target": name, "mode": mode, "concurrency": conc, "round": r, **out})
                        print(f"{name} {mode:6} c={conc:<3} r={r} ok={out['ok']:<5} err={out['errors']} "
                              f"load={out['loadavg']:.1f}", file=sys.stderr, flush=True)
        return {"phases": phases, "notes": self.notes, "upstream": {"first_token_ms": FIRST_TOKEN_S * 1000,
                                                                    "total_ms": TOTAL_S * 1000}}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description="the resilience issue's overhead bench (see BENCHMARKS.md)")
    parser.add_argument("--duration", type=float, default=2.5, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per (concurrency, mode)")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of warm-up per target and mode")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--max-requests", type=int, default=5000, help="per phase, a bound besides --duration")
    parser.add_argument("--litellm-python", default="/tmp/litellm-venv/bin/python")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--system-prompt", choices=["same", "none"], default="same",
                        help="same: (a), (b) and (d) send the system prompt (c) adds, so every target makes the "
                             "same model request; none: they send the user turn only (the first runs did)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "overhead.json")
    parser.add_argument("--text", default=TEXT,
                        help="the customer's message; /chat is the assistant: a question it searches for gets "
                             "the upstream's fixed answer checked against the listings (which it fails: a retry)")
    parser.add_argument("--same-text", action="store_true",
                        help="send the same message every time (the runs before 2026-12-07 05:00 did): the guard's "
                             "learned layer then answers from its cache; by default every message is new, as a "
                             "customer's turns are, and each costs (c) one ONNX run of the guard")
    args = parser.parse_args()
    bench = Bench(args)
    load0 = os.getloadavg()
    try:
        bench.start()
        data = bench.run()
    finally:
        bench.stop()
    data["loadavg_start_end"] = [load0, os.getloadavg()]
    data["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data))
    print(render(aggregate(data), data))


if __name__ == "__main__":
    main()
