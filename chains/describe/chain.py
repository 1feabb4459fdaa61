"""The `/describe` runnable: an operator's facts -> a grounded, moderated listing description.

    input -> canonical form -> guard (title, notes, lists) -> cache? -> input moderation
          -> model (prompts/describe.yaml) -> claim check (data/claims.yaml): strip sentences, or
             regenerate with prompts/describe_retry.yaml when too little is left -> trim to max_words
          -> output moderation -> cache -> DescribeOutput

Invoke raises (`InputRejected` for guard/moderation refusals, provider errors after fallbacks). Batch never
fails as a whole for one item: it de-duplicates identical inputs (one model call each), runs the distinct
ones with bounded concurrency, and turns an item's failure into an output whose `error` is set. Stream sends
the checked result as one chunk: no text leaves before its claims are checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_config_list, patch_config
from pydantic import ValidationError

from chains import claims
from chains.describe.cache import DescribeCache, cache_key
from chains.describe.fallback import from_input
from chains.describe.schema import (
    DescribeError,
    DescribeInput,
    DescribeOutput,
    Moderation,
    about,
    canonical,
    sources_of,
)
from chains.guard import GuardOutput, guard_text, prefetch_learned, worst
from chains.moderation import LOCAL_UNAVAILABLE, Moderator, Verdict
from chains.prompting import PromptStore
from errors import InputRejected, SkyMarketError, from_provider_error
from gateway import metrics

__all__ = ["DescribeRunnable", "error_output"]

log = logging.getLogger("skymarket.describe")


@dataclass
class _Job:
    """One canonical input, ready for the model."""

    inp: DescribeInput
    key: str
    messages: list[BaseMessage]
    retry_prompt: Any
    rules: claims.ClaimRules
    texts: list[str]  # the operator's text, for moderation
    flags: list[str] = field(default_factory=list)


def error_output(exc: BaseException) -> DescribeOutput:
    """A batch item's failure as an output (`error` set, `description` empty)."""
    if isinstance(exc, ValidationError):
        err = DescribeError(code="invalid_input", message=str(exc.errors(include_url=False)[0]["msg"]))
    else:
        mapped = exc if isinstance(exc, SkyMarketError) else from_provider_error(exc)
        if mapped is None:
            log.error("describe item failed: %s", type(exc).__name__, exc_info=exc)
            mapped = SkyMarketError("this item failed unexpectedly")
        err = DescribeError(code=mapped.code, message=mapped.message)
    return DescribeOutput(description="", grounded=False, model="", error=err)


def _text(message: Any) -> str:
    content = message.content if isinstance(message, BaseMessage) else str(message)
    text = content if isinstance(content, str) else " ".join(str(c) for c in content)
    return text.replace("**", "").strip().strip('"').strip()


def _cached(value: str | None) -> DescribeOutput | None:
    """A cache hit's output; a value that is not one (e.g. encrypted, read without DATA_ENCRYPTION_KEY) is a miss."""
    if value is None:
        return None
    try:
        return DescribeOutput.model_validate_json(value).model_copy(update={"cached": True})
    except ValidationError:
        log.warning("describe cache: an entry is not a description (encrypted under a key not configured?): a miss")
        return None


class DescribeRunnable(Runnable[DescribeInput, DescribeOutput]):
    """See the module docstring. Built by `chains.describe.build_describe_chain`."""

    def __init__(
        self, *, model: Runnable, prompts: PromptStore, prompt_name: str, rules_file: Any, moderator: Moderator,
        cache: DescribeCache, model_id: dict[str, Any], default_model: str, concurrency: int, max_batch: int,
        max_attempts: int, min_words: int, guard_config: Any = None, local_model: str | None = None,
        catalog: Callable[[], claims.Catalog | None] | None = None,
        setup: Callable[[], tuple[str, dict[str, Any], str]] | None = None,
        places: Sequence[str] = claims.AREA_NAMES,
    ) -> None:
        self.model = model
        self.prompts = prompts
        self.rules_file = rules_file
        self.moderator = moderator
        self.cache = cache
        # (prompt_name, model_id, default_model) of the preset in force, when it can change (data/presets.yaml)
        self._setup = setup or (lambda: (prompt_name, model_id, default_model))
        self.concurrency = concurrency
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.min_words = min_words
        self.guard_config = guard_config
        self.local_model = local_model
        self.catalog = catalog  # the services the listings know, for the `known` claim rules (None: skipped)
        self.places = tuple(places)  # the service area's place names: a description may name any of them

    @property
    def prompt_name(self) -> str:
        return self._setup()[0]

    @property
    def model_id(self) -> dict[str, Any]:
        """The models and their parameters: part of the cache key, so a preset edit is a cache miss."""
        return self._setup()[1]

    @property
    def default_model(self) -> str:
        return self._setup()[2]

    @property
    def InputType(self) -> type[DescribeInput]:
        return DescribeInput

    @property
    def OutputType(self) -> type[DescribeOutput]:
        return DescribeOutput

    # --- preparation (pure, cheap) ---
    def key(self, raw: Any) -> str:
        """The cache key of an input (raises `ValidationError` on a malformed one)."""
        inp = canonical(raw)
        prompt = self.prompts.get(self.prompt_name)
        retry = self.prompts.get(f"{self.prompt_name}_retry")
        parts = {"prompt": prompt.version, "retry": retry.version, "claims": claims.load_claims(self.rules_file)
                 .version, "models": self.model_id, "attempts": self.max_attempts, "min_words": self.min_words}
        return cache_key(canonical_input=inp.model_dump(mode="json"), parts=parts)

    def _prepare(self, raw: Any, *, record: bool = True) -> _Job:
        inp = canonical(raw)
        flags: list[str] = []
        verdicts: list[GuardOutput] = []

        def screened(name: str, text: str) -> str:
            if not text:
                return text
            try:
                g = guard_text(text, source="describe", config=self.guard_config)
            except InputRejected:
                if record:
                    metrics.guard_action("block")
                raise
            verdicts.append(g.verdict)
            if g.verdict.action == "flag":
                flags.append(f"guard: {name} looks like an instruction to the model; used as data only")
            if g.verdict.redactions:
                kinds = ", ".join(sorted(set(g.verdict.redactions)))
                flags.append(f"guard: personal data removed from {name} ({kinds})")
            return g.text

        def listed(values: list[str]) -> str:
            return "; ".join(values) if values else "none"

        # The guard's learned layer embeds every field below: one ONNX run for all of them, not one each.
        fields = [inp.title, inp.city, listed(inp.services), listed(inp.certifications), listed(inp.features)]
        prefetch_learned([*fields, inp.notes], source="describe", config=self.guard_config)

        values = {
            "title": screened("title", inp.title), "category": inp.category.replace("_", " "),
            "city": screened("city", inp.city), "services": screened("services", listed(inp.services)),
            "certifications": screened("certifications", listed(inp.certifications)),
            "insured": "yes" if inp.insured else "no", "features": screened("features", listed(inp.features))
            .replace("_", " "),
            "price_from_usd": "none" if inp.price_from_usd is None else f"{inp.price_from_usd:g}",
            "price_unit": inp.price_unit or "none", "notes": screened("notes", inp.notes) or "none",
            "tone": inp.tone, "max_words": inp.max_words,
        }
        if record:  # for the request's usage/audit record and the guard counter
            verdict = worst(verdicts)
            metrics.guard_action(verdict.action, verdict.reasons)
        system, human = self.prompts.get(self.prompt_name).render(**values)
        return _Job(
            inp=inp, key=self.key(inp), messages=[SystemMessage(system), HumanMessage(human or "")],
            retry_prompt=self.prompts.get(f"{self.prompt_name}_retry"),
            rules=claims.load_claims(self.rules_file),
            # One text, one moderation result: the fields read together, as a customer would see them.
            texts=["\n".join([inp.title, inp.city, inp.notes, *inp.services, *inp.certifications, *inp.features])],
            flags=flags,
        )

    @staticmethod
    def _refuse_input(job: _Job, verdict: Verdict) -> None:
        if verdict.source == LOCAL_UNAVAILABLE:
            job.flags.append("moderation: OpenAI moderation unavailable; the local check was used")
        if verdict.flagged:
            raise InputRejected(
                "the listing text was refused by moderation (" + ", ".join(verdict.categories) + "); please revise it",
                code="moderation_flagged",
            )

    # --- after each draft: claims, length; decides whether to ask again ---
    def _review(self, job: _Job, text: str, attempt: int) -> tuple[str, bool, list[BaseMessage] | None]:
        """Returns the cleaned text, whether it is grounded, and the next messages (None: done)."""
        catalog = self.catalog() if self.catalog is not None else None
        findings = claims.check(text, sources_of(job.inp, self.places), job.rules, feature="describe",
                                catalog=catalog)
        clean = claims.strip(text, findings) if findings else text
        if clean and not about(clean, job.inp):  # speaks of something else: no description at all
            findings.append(claims.Finding("unrelated", "names none of the listing's city, services or title", clean))
            clean = ""
        enough = len(clean.split()) >= self.min_words
        if findings and not enough and attempt < self.max_attempts:
            ids = ", ".join(dict.fromkeys(f.rule for f in findings))
            job.flags.append(f"regenerated: draft {attempt} made unsupported claims ({ids})")
            problems = "\n".join(f"- {f.reason}: \"{f.sentence}\"" for f in findings)
            follow_up, _ = job.retry_prompt.render(problems=problems, max_words=job.inp.max_words)
            return clean, False, [*job.messages, AIMessage(text), HumanMessage(follow_up)]
        job.flags.extend(f"removed {f}" for f in dict.fromkeys(f.flag for f in findings))
        if findings and not enough:  # the last attempt: the operator's facts as sentences, checked the same way
            built = from_input(job.inp)
            clean = claims.strip(built, claims.check(built, sources_of(job.inp, self.places), job.rules,
                                                     feature="describe", catalog=catalog))
            job.flags.append("replaced: too little of the model's text was backed; built from the input")
        clean, trimmed = claims.trim_words(clean, job.inp.max_words)
        if trimmed:
            job.flags.append(f"trimmed: cut to at most {job.inp.max_words} words")
        return clean, bool(clean), None

    def _result(self, job: _Job, text: str, grounded: bool, model: str, verdict: Verdict) -> DescribeOutput:
        if verdict.source == LOCAL_UNAVAILABLE:
            job.flags.append("moderation: OpenAI moderation unavailable; the local check was used")
        moderation = Moderation(flagged=verdict.flagged, categories=list(verdict.categories))
        if verdict.flagged:
            job.flags.append("moderation: the generated text was flagged (" + ", ".join(verdict.categories)
                             + ") and withheld")
            text, grounded = "", False
        return DescribeOutput(description=text, flags=list(dict.fromkeys(job.flags)), moderation=moderation,
                              grounded=grounded, model=model)

    def _model_name(self, message: Any) -> str:
        meta = getattr(message, "response_metadata", None) or {}
        name = str(meta.get("model_name") or self.default_model)
        # llama.cpp names its model by the file path: show the configured name, not the server's disk layout.
        return self.local_model if self.local_model and name.endswith(".gguf") else name

    @staticmethod
    def _cacheable(out: DescribeOutput) -> bool:
        """A grounded model text only: one built from the input is cheap to build again, and the model may do
        better next time."""
        return (out.grounded and not out.moderation.flagged and bool(out.description)
                and not any(f.startswith("replaced:") for f in out.flags))

    # --- invoke ---
    def _run(self, raw: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> DescribeOutput:
        job = self._prepare(raw)
        hit = _cached(self.cache.get(job.key))
        metrics.cache(hit=hit is not None)
        if hit is not None:
            return hit
        self._refuse_input(job, self.moderator.check(job.texts))
        child = patch_config(config, callbacks=run_manager.get_child())
        messages: list[BaseMessage] | None = job.messages
        attempt, text, grounded, model = 0, "", False, self.default_model
        while messages is not None:
            attempt += 1
            answer = self.model.invoke(messages, child)
            model = self._model_name(answer)
            text, grounded, messages = self._review(job, _text(answer), attempt)
        out = self._result(job, text, grounded, model, self.moderator.check([text]) if text else Verdict(False))
        if self._cacheable(out):
            self.cache.put(job.key, out.model_dump_json())
        return out

    async def _arun(
        self, raw: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> DescribeOutput:
        job = self._prepare(raw)
        hit = _cached(await self.cache.aget(job.key))
        metrics.cache(hit=hit is not None)
        if hit is not None:
            return hit
        self._refuse_input(job, await self.moderator.acheck(job.texts))
        child = patch_config(config, callbacks=run_manager.get_child())
        messages: list[BaseMessage] | None = job.messages
        attempt, text, grounded, model = 0, "", False, self.default_model
        while messages is not None:
            attempt += 1
            answer = await self.model.ainvoke(messages, child)
            model = self._model_name(answer)
            text, grounded, messages = self._review(job, _text(answer), attempt)
        verdict = await self.moderator.acheck([text]) if text else Verdict(False)
        out = self._result(job, text, grounded, model, verdict)
        if self._cacheable(out):
            await self.cache.aput(job.key, out.model_dump_json())
        return out

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> DescribeOutput:
        return self._call_with_config(self._run, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> DescribeOutput:
        return await self._acall_with_config(self._arun, input, config, **kwargs)

    # --- pre-check (before a stream opens) ---
    async def aprecheck(self, raw: Any) -> None:
        """Raises `InputRejected` if the guard or input moderation would refuse `raw`; silent on bad shape.

        LangServe reports an error raised inside a stream as a bare 500, so the server runs this first.
        """
        try:
            job = self._prepare(raw, record=False)  # the chain records its own run
        except ValidationError:
            return  # LangServe's own validation answers 422 with the details
        self._refuse_input(job, await self.moderator.acheck(job.texts))

    # --- batch ---
    def _plan(
        self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None
    ) -> tuple[dict[str, list[int]], dict[int, Exception], list[RunnableConfig]]:
        if len(inputs) > self.max_batch:
            raise InputRejected(f"a batch holds at most {self.max_batch} items; split it", code="batch_too_large")
        configs = get_config_list(config, len(inputs))
        limit = min(self.concurrency, configs[0].get("max_concurrency") or self.concurrency) if configs else 1
        groups: dict[str, list[int]] = {}
        failed: dict[int, Exception] = {}
        for i, raw in enumerate(inputs):
            try:
                groups.setdefault(self.key(raw), []).append(i)
            except (ValidationError, SkyMarketError) as exc:
                failed[i] = exc
        firsts = [idx[0] for idx in groups.values()]
        return groups, failed, [patch_config(configs[i], max_concurrency=limit) for i in firsts]

    @staticmethod
    def _spread(n: int, groups: dict[str, list[int]], failed: dict[int, Exception], results: list[Any],
                return_exceptions: bool) -> list[Any]:
        out: list[Any] = [None] * n
        for idx, res in zip(groups.values(), results, strict=True):
            for i in idx:
                out[i] = res
        out = [failed.get(i, o) for i, o in enumerate(out)]
        return [o if return_exceptions or not isinstance(o, BaseException) else error_output(o) for o in out]

    def batch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
              return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        if not inputs:
            return []
        groups, failed, configs = self._plan(inputs, config)
        firsts = [inputs[idx[0]] for idx in groups.values()]
        results = super().batch(firsts, configs, return_exceptions=True, **kwargs) if firsts else []
        return self._spread(len(inputs), groups, failed, results, return_exceptions)

    async def abatch(self, inputs: list[Any], config: RunnableConfig | list[RunnableConfig] | None = None, *,
                     return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        if not inputs:
            return []
        groups, failed, configs = self._plan(inputs, config)
        firsts = [inputs[idx[0]] for idx in groups.values()]
        results = await super().abatch(firsts, configs, return_exceptions=True, **kwargs) if firsts else []
        return self._spread(len(inputs), groups, failed, results, return_exceptions)
