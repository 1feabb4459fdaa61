"""The one typed object that carries the service's dependencies.

`build_services(settings)` only constructs (nothing connects); `start()` runs in the FastAPI lifespan and
starts what needs starting (the local model server); `stop()` undoes it. Routes reach it through the
`ServicesDep` alias in `server.py`.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable

from chains.assistant import IndexCatalog, View, build_assistant_chain
from chains.breaker import BreakerRegistry
from chains.describe import build_describe_chain
from chains.guard import build_guard_chain, warm_learned
from chains.guarded import paid_models_off
from chains.local_llm import LocalModelServer, embedded_model_server, uses_local_model
from chains.models import build_chat_model
from chains.moderation import Moderator, build_moderator
from chains.prompting import PromptStore
from chains.search import build_search_chain
from errors import SkyMarketError
from gateway.admin_config import rejected_edits
from gateway.gate import Gateway, build_gateway
from gateway.recording import Observability, build_observability
from gateway.retention_job import RetentionJob, build_retention_job
from livefiles import set_check_interval
from retrieval.engine import SearchEngine, build_search_engine
from settings import Settings

__all__ = ["Services", "build_services"]

log = logging.getLogger("skymarket.services")


@dataclass
class Services:
    settings: Settings
    prompts: PromptStore
    local_model: LocalModelServer | None
    breakers: BreakerRegistry
    chains: dict[str, Runnable] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    observability: Observability | None = None  # usage ledger, audit, metrics, alerts (gateway/recording.py)
    gateway: Gateway | None = None  # API keys, limits, budgets (gateway/gate.py)
    search: SearchEngine | None = None  # listings index: Chroma + BM25 + embeddings (retrieval/engine.py)
    freeze_gc: bool = False  # the serving process: gc.freeze() once the search index has loaded (server.py)
    retention: RetentionJob | None = None  # prunes every store once a day (gateway/retention_job.py)
    draining: bool = False  # shutting down (SIGTERM, serving/drain.py): /readyz answers 503 so no new traffic comes
    moderator: Moderator | None = None  # the assistant's and describe's (chains/moderation): closed by the lifespan

    @property
    def local_base_url(self) -> str | None:
        if self.settings.local_model_url:
            return self.settings.local_model_url
        return self.local_model.base_url if self.local_model is not None else None

    def start(self) -> None:
        """Starts the embedded parts. A part that fails is reported by /readyz, not fatal at start; except
        the gateway: production without an API key refuses to start (ConfigError)."""
        if self.gateway is not None:
            self.gateway.start()
        if self.local_model is not None:
            try:
                self.local_model.start()
                self.ready["local_model"] = True
            except SkyMarketError as exc:
                self.ready["local_model"] = False
                self.problems["local_model"] = exc.message
                log.error("local model did not start: %s", exc.message)
        elif self.settings.local_model_url:
            self.ready["local_model"] = True
        self.ready["models"] = self.settings.has_openai or self.ready.get("local_model", False)
        if self.settings.guard_learned:
            # The guard's embedding model, before the first request (whose deadline should not pay for it).
            warm_learned()
        if self.search is not None:
            # Loading the index and the embedding model takes a moment: /readyz says when it is done.
            self.ready["search_index"] = False
            threading.Thread(target=self._warm_search, name="search-warm", daemon=True).start()
        if self.observability is not None:
            try:
                self.observability.start()  # a database that is down is not an error here: rows wait for it
            except Exception as exc:  # e.g. the spool folder unusable
                self.problems["usage_ledger"] = f"usage ledger unavailable: {type(exc).__name__}"
                log.error("usage ledger did not start: %s", type(exc).__name__)
        if self.retention is not None:
            self.retention.start()

    def _warm_search(self) -> None:
        assert self.search is not None
        try:
            self.search.warm()
            size = self.search.index.size
        except Exception as exc:  # the service still answers chat and describe without search
            self.problems["search_index"] = f"search index unavailable: {type(exc).__name__}: {exc}"[:300]
            log.error("search index did not load: %s", self.problems["search_index"])
            return
        if size == 0:
            self.problems["search_index"] = "search index is empty: run `make index` (python -m retrieval.ingest)"
            return
        self.ready["search_index"] = True
        if self.freeze_gc:  # the index loads after start-up's freeze: out of the collector's reach too
            gc.collect()
            gc.freeze()

    def stop(self) -> None:
        if self.retention is not None:
            self.retention.stop()
        if self.search is not None:
            self.search.close()  # the query-embedding batch worker
        if self.gateway is not None:
            self.gateway.stop()
        if self.local_model is not None:
            self.local_model.stop()
        if self.observability is not None:
            self.observability.stop()

    def readiness(self) -> dict[str, Any]:
        """What /readyz shows: each part's readiness, problems, what runs degraded, each model's circuit state.

        `degraded` names parts that are down while the service still answers correctly: the usage ledger's
        database (rows wait in a backlog: its size, how long, the error) and the limits' Redis (per-process
        limits, settlements waiting), and a daily prune that failed (gateway/retention_job.py). They do not make
        `ready` false: every replica shares that database and
        Redis, so a readiness failure would take them all out of the load balancer together and turn a
        bookkeeping outage into a full one. Alert on `degraded` (or the /metrics backlog) instead. A process
        that is shutting down (`draining`) is not ready: it takes no new traffic.
        `degraded.config` names files whose last edit was refused: the previous version serves, so the process
        stays ready (the same bad file on every replica would otherwise take them all out at once).
        """
        degraded: dict[str, Any] = {}
        if self.observability is not None and (ledger := self.observability.durable.status()) is not None:
            degraded["usage_ledger"] = ledger
        if self.gateway is not None and (limits := self.gateway.limiter.status()) is not None:
            degraded["rate_limits"] = limits
        if self.retention is not None and (pruning := self.retention.status()) is not None:
            degraded["retention"] = pruning  # the last prune failed (a store named); the next one tries again
        if self.search is not None and (stale := self.search.stale()) is not None:
            degraded["search_index"] = stale  # vectors of another model: BM25 and filters still answer
        if rejected := rejected_edits(self):  # a bad edit: the last good version serves (gateway/admin_config.py)
            degraded["config"] = {"rejected": rejected}
        body = {"ready": all(self.ready.values()) and bool(self.ready) and not self.draining,
                "parts": dict(self.ready), "problems": dict(self.problems), "degraded": degraded,
                "circuits": self.breakers.states()}
        if self.draining:
            body["draining"] = True
        return body


def _paid_models_off() -> bool:
    paid_models_off()
    return True


def build_services(settings: Settings) -> Services:
    """Constructs every dependency and chain from settings, without connecting to anything."""
    set_check_interval(settings.config_check_interval_s)  # presets and data files: how often edits are looked for
    uses_local = uses_local_model(settings)
    local = embedded_model_server(settings)
    breakers = BreakerRegistry(
        failure_threshold=settings.circuit_failure_threshold, window_s=settings.circuit_window_s,
        reset_timeout_s=settings.circuit_reset_s,
    )
    services = Services(
        settings=settings, prompts=PromptStore(settings.prompts_dir), local_model=local, breakers=breakers
    )
    services.observability = build_observability(settings)
    services.retention = build_retention_job(settings)
    breakers.listeners.append(services.observability.metrics.set_circuit)
    # Budgets read spend from the ledger plus what waits in its backlog while the database is down.
    services.gateway = build_gateway(settings=settings, ledger=services.observability.durable)
    services.observability.metrics.watch_settlements(services.gateway.limiter.settlement_figures)
    local_url = services.local_base_url if uses_local else None
    if settings.local_model_enabled:  # over budget: the paid models are skipped and the local model answers
        services.gateway.over_budget = _paid_models_off
    services.search = build_search_engine(settings=settings)
    moderator = services.moderator = build_moderator(settings, breakers=breakers)  # one memo for assistant, describe
    catalog = IndexCatalog(services.search)  # the names the listings know, for the claim check
    chat_model = build_chat_model(settings=settings, use_case="chat", local_base_url=local_url, breakers=breakers)
    hints_model = None
    if settings.assistant_llm_condense and settings.has_openai:  # the optional LLM reading of the conversation
        hints_model = build_chat_model(settings=settings, use_case="search", local_base_url=None, breakers=breakers)
    faces: tuple[tuple[str, View], ...] = (("assistant", "object"), ("chat", "text"))  # one assistant, two faces
    for route, view in faces:
        services.chains[route] = build_assistant_chain(
            settings=settings, model=chat_model, engine=services.search, prompts=services.prompts,
            view=view, moderator=moderator, catalog=catalog, hints_model=hints_model,
        )
    services.chains["guard"] = build_guard_chain(settings=settings)
    search_preset = settings.preset("search")
    services.chains["search"] = build_search_chain(
        settings=settings, index=services.search, prompts=services.prompts, prompt_name=search_preset.prompt,
        model=build_chat_model(settings=settings, use_case="search", local_base_url=local_url, breakers=breakers)
        if settings.search_llm_parser else None,
    )
    services.chains["describe"] = build_describe_chain(
        settings=settings, prompts=services.prompts, local_base_url=local_url, moderator=moderator,
        catalog=catalog,
        model=build_chat_model(settings=settings, use_case="describe", local_base_url=local_url, breakers=breakers),
    )
    return services
