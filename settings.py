"""The one Settings object: the only module that reads the environment (and `.env`).

Built once in `server.create_app()` (or a CLI's entry point) and passed down; a test builds its own.
`load_settings()` turns pydantic's validation errors into a `ConfigError` that names each variable and says
what is wrong, without ever echoing the value (it may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource, SettingsConfigDict

from errors import ConfigError
from livefiles import live_file

__all__ = ["ROOT", "DescribeMode", "Preset", "Settings", "load_settings"]

ROOT = Path(__file__).resolve().parent

# Keys copied from docs and templates; refused outside and inside development alike, since they never work.
_PLACEHOLDER_KEY = re.compile(r"(your|xxx|placeholder|changeme|replace|example|dummy|<.*>)", re.IGNORECASE)

# How /describe makes a description with a model (data/presets.yaml `mode`; see Preset.mode)
DescribeMode = Literal["write", "compose", "facts"]


class LocalPreset(BaseModel):
    """What changes when the embedded local model answers: its own prompt and parameters (`None`: the
    use case's own)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    # false: with no listing to cite (small talk, a general question) the answer is the data's own text (what
    # the assistant does, how to ask), not this model's: a 135M model talks freely about a product it does not know
    answers_without_listings: bool = True
    # false: when this model answers first (no paid model configured, or none allowed: a budget spent) and
    # listings are cited, the answer is the data's own (chains/assistant/answer.py: what was found, what the turn
    # asked of them) and this model is not asked: what its text adds, when it survives the checks, is mostly odd
    # (README, data/presets.yaml). As a paid model's fallback it still answers (the gateway's error contract)
    answers_with_listings: bool = True
    # describe only: how this model's text is made (`Preset.mode`); None: the use case's own
    mode: DescribeMode | None = None


class Preset(BaseModel):
    """Per-use-case model parameters, from `data/presets.yaml`. `None` means: use the global setting."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    fallback_model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    prompt: str
    local: LocalPreset | None = None  # the embedded model's own prompt and parameters
    # describe only. write: the model writes the whole description; compose: the description is built from the
    # input as prose and the model writes its opening sentence (checked like any sentence); facts: the prose
    # alone, this model is not asked (the next one is, if any)
    mode: DescribeMode = "write"

    def answers_without_listings(self, *, local: bool) -> bool:
        """Whether the model that answers writes the text when nothing is cited (the local model may not)."""
        return not (local and self.local is not None and not self.local.answers_without_listings)

    def answers_with_listings(self, *, local: bool) -> bool:
        """Whether the model that answers writes the text when listings are cited (the local model may not)."""
        return not (local and self.local is not None and not self.local.answers_with_listings)

    def mode_for(self, *, local: bool) -> DescribeMode:
        """How the model that answers makes a description: the local model may have its own mode."""
        return self.local.mode if local and self.local is not None and self.local.mode else self.mode

    def prompt_for(self, *, local: bool) -> str:
        """The prompt file for the model that answers: the local model may have its own."""
        return self.local.prompt if local and self.local is not None and self.local.prompt else self.prompt


class Settings(BaseSettings):
    """Every setting of the service. Environment variable = field name in upper case."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    skymarket_env: Literal["development", "production"] = "development"

    # --- OpenAI (or any OpenAI-compatible endpoint) ---
    openai_api_key: SecretStr | None = None
    openai_organization_id: str | None = None
    openai_project_id: str | None = None
    openai_base_url: str | None = None
    ai_model_primary: str = "gpt-4o-mini"
    ai_model_fallback: str = "gpt-3.5-turbo"
    ai_max_tokens: int = Field(default=1000, ge=1, le=32_000)
    ai_temperature: float = Field(default=0.7, ge=0, le=2)
    ai_request_timeout: int = Field(default=30_000, ge=100, le=600_000, description="milliseconds")
    ai_max_retries: int = Field(default=2, ge=0, le=10)
    ai_rate_limit_rpm: int = Field(default=60, ge=1)
    ai_rate_limit_tpm: int = Field(default=60_000, ge=1)
    ai_cost_alert_threshold: float = Field(default=100.0, ge=0, description="USD per day")

    # --- the embedded local model (llama.cpp through xllamacpp) ---
    local_model_enabled: bool = True  # with a key: the last resort after primary and fallback
    local_model_url: str | None = None  # an already-running OpenAI-compatible server; else start one
    local_model_path: Path = ROOT / "data" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    local_model_sha256: str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    local_model_name: str = "smollm2-135m-instruct"
    local_model_threads: int = Field(default=1, ge=1, le=64)
    local_model_ctx: int = Field(default=4096, ge=512)
    local_model_parallel: int = Field(default=1, ge=1, le=16)
    local_model_max_tokens: int = Field(default=200, ge=16)  # ~30 tokens/s on one thread: keep answers short
    local_model_timeout_s: float = Field(default=120.0, ge=1)
    local_model_frequency_penalty: float = Field(default=0.8, ge=0, le=2)  # a 135M model loops without it

    # --- resilience: circuit breakers and the request deadline ---
    circuit_failure_threshold: int = Field(default=5, ge=1)  # failures within the window that open a breaker
    circuit_window_s: float = Field(default=30.0, gt=0)
    circuit_reset_s: float = Field(default=15.0, gt=0)  # open this long, then one probe call
    ai_deadline_margin_ms: int = Field(default=2000, ge=0)  # a request ends by AI_REQUEST_TIMEOUT + this

    # --- the HTTP server (serving/) ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)  # serving processes on one port; > 1 needs REDIS_URL and CHROMA_HOST
    graceful_timeout_s: float = Field(default=30.0, ge=0, le=3600)  # on SIGTERM, in-flight requests get this long
    shutdown_delay_s: float = Field(default=0.0, ge=0, le=300)  # on SIGTERM, /readyz is 503 but requests still come in
    prometheus_multiproc_dir: Path | None = None  # set by `serve --workers N`: every worker's metrics, summed

    # --- files ---
    prompts_dir: Path = ROOT / "prompts"
    presets_file: Path = ROOT / "data" / "presets.yaml"
    data_dir: Path = ROOT / "data"
    # Claims, moderation and price files are re-read after an edit (a stat per use); the presets and the guard's
    # data files, read several times per request, are checked for an edit at most this often (livefiles.py)
    config_check_interval_s: float = Field(default=1.0, ge=0, le=3600)

    # --- chat input limits (/assistant and /chat) ---
    chat_max_messages: int = Field(default=50, ge=1)
    chat_max_message_chars: int = Field(default=4000, ge=1)

    # --- the assistant (chains/assistant/: /assistant and its text view /chat) ---
    assistant_listings: int = Field(default=3, ge=1, le=10)  # listings cited per answer
    assistant_min_words: int = Field(default=5, ge=1)  # fewer left after the claim check: the listings' answer
    assistant_max_attempts: int = Field(default=2, ge=1, le=3)  # answers asked for (the embedded model: one)
    assistant_llm_condense: bool = False  # with a key: the search's LLM step also reads the whole conversation
    assistant_llm_timeout_s: float = Field(default=2.0, gt=0, le=30)  # the answer never waits longer for it
    # a question over the listings shown that none of them answers yes ("can any of them come on a saturday?"):
    # say so and show other listings that do, said as other listings (off: keep the shown, offer to search)
    assistant_search_when_none_has_it: bool = True
    assistant_unlisted_file: Path = ROOT / "data" / "unlisted.yaml"  # services no listing may offer (unlisted.py)

    # --- search (retrieval/) ---
    chroma_path: Path = ROOT / "data" / "chroma"
    chroma_host: str | None = None
    chroma_port: int | None = None
    chroma_collection: str = "listings"
    # HNSW's search breadth. Search asks Chroma for 100 candidates; at Chroma's default (100) a query's tail
    # changed from one process to the next (an index under Chroma's sync threshold is rebuilt at every load, on
    # several threads). 400 gave the same candidates in every process (tests/retrieval/test_store.py); the cost
    # at scale is in BENCHMARKS.md (bench/hnsw_ef.py). Set on the collection when the store opens.
    chroma_ef_search: int = Field(default=400, ge=100, le=10_000)
    embeddings_provider: Literal["local", "openai"] = "local"
    openai_embeddings_model: str = "text-embedding-3-small"
    listings_file: Path = ROOT / "data" / "listings.jsonl"
    places_file: Path = ROOT / "data" / "places.json"
    search_llm_parser: bool = False  # the optional LLM query-understanding step
    search_llm_timeout_s: float = Field(default=2.0, gt=0, le=30)  # the search never waits longer for it
    embeddings_threads: int = Field(default=1, ge=1, le=64)  # onnxruntime intra-op threads (shared 2-core box)
    embeddings_batch_size: int = Field(default=8, ge=1, le=1024)  # texts per ONNX run / Chroma upsert
    embeddings_doc_max_tokens: int = Field(default=64, ge=8, le=256)  # listing text is cut here (CPU cost)
    ingest_threads: int | None = Field(default=None, ge=1, le=64)  # ONNX runs at once in an ingest; None: every core
    search_cache_size: int = Field(default=2048, ge=0, le=1_000_000)  # answers kept per parsed query; 0 = off
    search_vector_cache_size: int = Field(default=4096, ge=0, le=1_000_000)  # query text -> vector hits; 0 = off
    search_embed_batch: int = Field(default=16, ge=1, le=256)  # concurrent query embeddings per ONNX run

    # --- guard (chains/guard) ---
    guard_max_chars: int = Field(default=4000, ge=1)
    guard_redact_pii: bool = True
    guard_flag_score: float = Field(default=0.5, gt=0, le=1)  # score at or above which text is flagged
    guard_block_score: float = Field(default=0.9, gt=0, le=1)  # ... and blocked (400 before any model call)
    guard_max_combining: int = Field(default=2, ge=0, le=16)  # combining marks kept per character (Zalgo cap)
    guard_learned: bool = True  # the learned layer (MiniLM embedding + logistic regression) beside the rules

    # --- describe (chains/describe) ---
    describe_concurrency: int = Field(default=8, ge=1, le=64)  # model calls in flight per /describe/batch
    describe_max_batch: int = Field(default=500, ge=1, le=10_000)  # items per /describe/batch request
    describe_max_attempts: int = Field(default=2, ge=1, le=5)  # generations per item (1 = never regenerate)
    describe_min_words: int = Field(default=15, ge=1)  # shorter after removing claims: regenerate / not grounded
    describe_cache_enabled: bool = True
    describe_cache_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)
    describe_cache_path: Path = ROOT / "data" / "describe_cache.db"  # used when REDIS_URL is unset
    describe_claims_file: Path = ROOT / "data" / "claims.yaml"
    describe_moderation: Literal["auto", "openai", "local", "off"] = "auto"  # auto: openai with a key, else local
    moderation_model: str = "omni-moderation-latest"
    moderation_rules_file: Path = ROOT / "data" / "moderation.yaml"  # the offline check's patterns

    # --- prompt evaluation (chains/evals: `skymarket prompts eval`) ---
    prompt_eval_repeats: int = Field(default=3, ge=1, le=50)  # runs per case: the model is not deterministic
    prompt_eval_min_pass_rate: float = Field(default=1.0, ge=0, le=1)  # a case below this fails the run
    prompt_eval_cases_dir: Path = ROOT / "prompts" / "cases"  # <prompt>.yaml; baselines in accepted/<prompt>.json
    prompt_eval_report_dir: Path = ROOT / "data" / "evals"  # HTML and JSON reports
    prompt_eval_judge_model: str | None = None  # LLM-as-judge for `judge:` rubrics (needs OPENAI_API_KEY)

    # --- gateway, usage, audit ---
    redis_url: str | None = None
    database_url: str | None = None  # PostgreSQL for several replicas; SQLite under data/ otherwise
    playgrounds_enabled: bool | None = None  # default: on in development, off in production
    max_body_bytes: int = Field(default=256_000, ge=1024)
    max_json_depth: int = Field(default=64, ge=4, le=500)  # deeper bodies: 400 before any parser recurses

    # --- gateway: auth, limits, budgets (gateway/keys.py, auth.py, limits.py, budgets.py) ---
    gateway_keys_file: Path = ROOT / "data" / "keys.db"  # the SQLite key store when DATABASE_URL is unset
    gateway_keys_refresh_s: float = Field(default=5.0, ge=0)  # a key revoked by the CLI stops working within this
    gateway_user_rpm: int | None = Field(default=None, ge=1)  # per end user (X-User-Id); None: AI_RATE_LIMIT_RPM
    gateway_user_tpm: int | None = Field(default=None, ge=1)  # ... None: AI_RATE_LIMIT_TPM
    gateway_global_rpm: int = Field(default=1_000, ge=1)  # model routes, all keys together (process or Redis)
    gateway_search_global_rpm: int = Field(default=12_000, ge=1)  # /search's own service-wide window
    gateway_guard_global_rpm: int = Field(default=12_000, ge=1)  # /guard's own service-wide window
    gateway_global_tpm: int = Field(default=1_000_000, ge=1)
    gateway_max_tokens_cap: int | None = Field(default=None, ge=1)  # client's max_tokens ceiling; None: AI_MAX_TOKENS
    gateway_prompt_overhead_tokens: int = Field(default=300, ge=0)  # system prompt etc., added to each estimate
    gateway_redis_timeout_s: float = Field(default=1.0, gt=0, le=10)  # connect and read: Redis never hangs us
    gateway_redis_failure: Literal["fallback", "deny"] = "fallback"  # Redis down: per-process limits, or 503
    gateway_redis_retry_s: float = Field(default=5.0, gt=0)  # after a failure, try Redis again this much later
    gateway_daily_budget_usd: float | None = Field(default=None, ge=0)  # global hard budget per UTC day
    gateway_budget_cache_s: float = Field(default=5.0, ge=0)  # spend is re-read from the ledger this often

    # --- usage ledger, prices, audit trail, metrics, alerts (gateway/usage.py ... gateway/alerts.py) ---
    usage_db_file: Path = ROOT / "data" / "usage.db"  # the SQLite ledger when DATABASE_URL is unset
    # The ledger's backlog while the database is down (gateway/durable.py): kept, retried, never dropped.
    usage_spool_dir: Path = ROOT / "data" / "usage_spool"  # rows waiting on disk; replayed at the next start
    usage_backlog_max_rows: int = Field(default=10_000, ge=1)  # rows waiting in memory before they go to disk
    usage_spool_after_s: float = Field(default=5.0, ge=0)  # rows waiting this long go to disk (a crash loses less)
    usage_retry_s: float = Field(default=1.0, gt=0, le=300)  # how often a down database is tried again
    pricing_file: Path = ROOT / "data" / "pricing.json"
    audit_file: Path = ROOT / "data" / "audit" / "audit.jsonl"
    audit_text: bool = False  # also write prompt and answer text, after PII redaction
    audit_hmac_key: SecretStr | None = None  # keys the end-user id hash; else a random key kept in data/audit/
    # Encryption at rest (gateway/crypto.py) of the audit text and the describe cache: Fernet keys, newest first;
    # older keys listed after it still decrypt (rotation: `skymarket data rotate-key`, then drop them).
    data_encryption_key: SecretStr | None = None  # one key or several, comma-separated
    data_encryption_key_file: Path | None = None  # one key per line; read after DATA_ENCRYPTION_KEY's keys
    alert_webhook_url: str | None = None  # alerts are POSTed here as JSON (and always logged)
    alert_error_rate_jump: float = Field(default=0.2, ge=0, le=1)  # last-hour rate minus the day's, to alert
    alert_fallback_rate_jump: float = Field(default=0.2, ge=0, le=1)
    alert_min_requests: int = Field(default=20, ge=1)  # no rate alert on fewer requests in the last hour
    alert_check_interval_s: float = Field(default=60.0, ge=0)  # how often requests trigger an alert check

    # --- retention (gateway/retention.py: `skymarket prune [--dry-run]` and the server's daily job) ---
    # Days each store keeps its data; 0 keeps it forever. Rollups outlive rows: reports read old windows from them.
    retention_usage_days: int = Field(default=90, ge=0)  # usage ledger rows
    retention_rollups_days: int = Field(default=730, ge=0)  # the ledger's hourly/daily sums (>= the rows' days)
    retention_audit_days: int = Field(default=365, ge=0)  # audit records (a sealed checkpoint replaces them)
    retention_describe_cache_days: int = Field(default=30, ge=0)  # describe cache entries (SQLite or Redis)
    retention_eval_reports_days: int = Field(default=90, ge=0)  # `skymarket prompts eval` reports
    retention_interval_s: float = Field(default=86_400.0, ge=0)  # the server prunes this often; 0: never (cron)

    @field_validator("openai_api_key")
    @classmethod
    def _refuse_placeholder_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return None
        raw = v.get_secret_value().strip()
        if not raw:
            return None
        if _PLACEHOLDER_KEY.search(raw) or len(raw) < 20:
            raise ValueError("looks like a placeholder, not a real key: set a real key or leave it unset")
        return SecretStr(raw)

    @field_validator("openai_base_url", "local_model_url", "alert_webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8080/v1")
        return v.rstrip("/")

    @field_validator("data_encryption_key")
    @classmethod
    def _fernet_keys(cls, v: SecretStr | None) -> SecretStr | None:
        from gateway.crypto import parse_keys

        if v is None or not v.get_secret_value().strip():
            return None
        parse_keys(v.get_secret_value())  # a bad key: refused here, not mid-request
        return v

    @model_validator(mode="after")
    def _encryption_at_rest(self) -> Settings:
        keys = self.data_keys  # reads and checks DATA_ENCRYPTION_KEY_FILE now: a bad file fails at start
        if self.skymarket_env == "production" and self.audit_text and not keys:
            raise ValueError("AUDIT_TEXT=true in production needs DATA_ENCRYPTION_KEY or DATA_ENCRYPTION_KEY_FILE: "
                             "prompts and answers are never stored in plain text there")
        return self

    @model_validator(mode="after")
    def _chroma_pair(self) -> Settings:
        if (self.chroma_host is None) != (self.chroma_port is None):
            raise ValueError("CHROMA_HOST and CHROMA_PORT must be set together")
        return self

    @model_validator(mode="after")
    def _rollups_outlive_rows(self) -> Settings:
        rows, sums = self.retention_usage_days, self.retention_rollups_days
        if sums and (not rows or sums < rows):  # reports would find rows whose hours' sums are gone
            raise ValueError("RETENTION_ROLLUPS_DAYS must be 0 (forever) or at least RETENTION_USAGE_DAYS")
        return self

    # --- derived ---
    @property
    def request_timeout_s(self) -> float:
        return self.ai_request_timeout / 1000.0

    @property
    def request_deadline_s(self) -> float:
        return (self.ai_request_timeout + self.ai_deadline_margin_ms) / 1000.0

    @property
    def has_openai(self) -> bool:
        return self.openai_api_key is not None

    @property
    def serve_playgrounds(self) -> bool:
        if self.playgrounds_enabled is not None:
            return self.playgrounds_enabled
        return self.skymarket_env == "development"

    @property
    def data_keys(self) -> list[bytes]:
        """The Fernet keys for stored text, newest first: DATA_ENCRYPTION_KEY's, then DATA_ENCRYPTION_KEY_FILE's.

        Raises:
            ValueError: the key file cannot be read or holds something that is not a key.
        """
        from gateway.crypto import parse_keys

        keys = []
        if self.data_encryption_key is not None:
            keys += parse_keys(self.data_encryption_key.get_secret_value(), source="DATA_ENCRYPTION_KEY")
        if self.data_encryption_key_file is not None:
            try:
                text = self.data_encryption_key_file.read_text(encoding="utf-8")
            except (OSError, UnicodeError) as exc:
                raise ValueError(f"DATA_ENCRYPTION_KEY_FILE: cannot read it ({type(exc).__name__})") from None
            keys += [k for k in parse_keys(text, source="DATA_ENCRYPTION_KEY_FILE") if k not in keys]
            if not keys:
                raise ValueError("DATA_ENCRYPTION_KEY_FILE: holds no key")
        return keys

    @property
    def presets(self) -> dict[str, Preset]:
        """The presets in force: `PRESETS_FILE`, re-read after an edit; a bad edit keeps the last good one."""
        return live_file(self.presets_file, _presets_parser(self.presets_file), kind="presets", hot=True).get()

    def sources(self) -> dict[str, str]:
        """Where each setting's value came from: `environment`, `.env`, `argument` (built in code: a test, a
        CLI's override) or `default`; pydantic-settings' order (an argument set beside the variable shows as
        environment). For `GET /admin/config`."""
        env = EnvSettingsSource(type(self))()
        dotenv = DotEnvSettingsSource(type(self), env_file=self.model_config.get("env_file"))()
        return {name: "default" if name not in self.model_fields_set else "environment" if name in env
                else ".env" if name in dotenv else "argument" for name in type(self).model_fields}

    def preset(self, use_case: str) -> Preset:
        try:
            return self.presets[use_case]
        except KeyError:
            raise ConfigError(f"no preset {use_case!r} in {self.presets_file.name}") from None


def load_presets(path: Path) -> dict[str, Preset]:
    """Reads the per-use-case presets file; a bad entry names the use case and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read presets file {path}: {exc}") from None
    return parse_presets(text, path)


def _presets_parser(path: Path) -> Callable[[str], dict[str, Preset]]:
    """The live file's validation: the start's, and an edit may not drop a use case the service started with."""
    first: set[str] = set()

    def parse(text: str) -> dict[str, Preset]:
        out = parse_presets(text, path)
        if missing := sorted(first - set(out)):
            raise ConfigError(f"{path.name}: preset(s) {', '.join(missing)} removed; the service uses them")
        first.update(out if not first else ())
        return out

    return parse


def parse_presets(text: str, path: Path) -> dict[str, Preset]:
    """Validates the presets file's text (`path` names it in errors)."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read presets file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping of use case -> preset")
    out: dict[str, Preset] = {}
    for name, body in raw.items():
        try:
            out[str(name)] = Preset.model_validate(body)
        except ValidationError as exc:
            raise ConfigError(f"{path.name}: preset {name!r}: {_describe(exc, env=False)}") from None
    return out


def _describe(exc: ValidationError, *, env: bool = True) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        name = loc.upper() if env else loc
        parts.append(f"{name}: {err['msg']}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Builds Settings from the environment (plus overrides), with a clear error and no echoed values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("invalid settings: " + _describe(exc)) from None
