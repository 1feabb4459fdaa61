"""The `/describe` runnable: an operator's facts -> a grounded, moderated listing description.

    input -> canonical form -> guard (title, notes, lists) -> cache? -> input moderation
          -> model (the prompt of the model tried: prompts/describe.yaml, the embedded model its own)
          -> claim check (data/claims.yaml): strip sentences, or regenerate with <prompt>_retry when too
             little is left -> trim to max_words -> output moderation -> cache -> DescribeOutput

The chain tries the models itself (`chains.fallbacks.Fallbacks`), so it renders the prompt of the model it is
about to call: the describe preset's `local:` gives the embedded model its own prompt and `mode` (also when a
paid model fails over to it). `mode: write`: the model writes the description. `mode: compose`: the text is the
operator's facts as prose (`fallback.from_input`) and the model writes only its opening sentence, checked like
any sentence and regenerated (same prompt) when unusable; after the last attempt the prose stands alone.
`mode: facts`: that model is not asked; the next one is, and with none left the prose is the description.

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
from chains.describe.opening import first_sentence, names_listing, reads_as_prose
from chains.describe.schema import (
    DescribeError,
    DescribeInput,
    DescribeOutput,
    Moderation,
    about,
    canonical,
    sources_of,
)
from chains.fallbacks import Fallbacks, NoSuitedModel, Unsuited
from chains.guard import GuardOutput, guard_text, prefetch_learned, worst
from chains.moderation import LOCAL_UNAVAILABLE, Moderator, Verdict
from chains.prompting import PromptStore
from errors import InputRejected, SkyMarketError, from_provider_error
from gateway import metrics
from settings import DescribeMode, Preset

__all__ = ["DescribeRunnable", "error_output"]

log = logging.getLogger("skymarket.describe")

@dataclass
class _Job:
    """One canonical input, ready for the model."""

    inp: DescribeInput
    key: str
    values: dict[str, Any]  # the prompt's variables (screened by the guard)
    rules: claims.ClaimRules
    texts: list[str]  # the operator's text, for moderation
    flags: list[str] = field(default_factory=list)
    draft: str | None = None  # write mode, after a draft with unbacked claims: the draft and what is wrong
    problems: str = ""


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
        places: Sequence[str] = claims.AREA_NAMES, preset: Callable[[], Preset] | None = None,
    ) -> None:
        self.model = model
        self.models = Fallbacks(model)  # tried here, so each model gets its own prompt and mode
        # the describe preset in force (prompt and mode per model); default: `prompt_name` for every model
        self._preset = preset or (lambda: Preset(prompt=self.prompt_name))
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

    def _is_local(self, model: Runnable) -> bool:
        return self.local_model is not None and model.name == f"model:{self.local_model}"

    def _mode(self, model: Runnable) -> DescribeMode:
        return self._preset().mode_for(local=self._is_local(model))

    def _prompt_versions(self) -> dict[str, str]:
        """The prompt files the preset in force may use (each model's, and the retry of a `write` one)."""
        preset, names = self._preset(), [self.prompt_name]
        for local in (False, True):
            name, mode = preset.prompt_for(local=local), preset.mode_for(local=local)
            names += [name, f"{name}_retry"] if mode == "write" else [name] if mode == "compose" else []
        return {n: self.prompts.get(n).version for n in dict.fromkeys(names)}

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
        parts = {"prompts": self._prompt_versions(), "claims": claims.load_claims(self.rules_file).version,
                 "models": self.model_id, "attempts": self.max_attempts, "min_words": self.min_words}
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
        self.prompts.get(self.prompt_name).render(**values)  # a prompt that cannot be filled fails here
        return _Job(
            inp=inp, key=self.key(inp), values=values, rules=claims.load_claims(self.rules_file),
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

    # --- each model's messages: its own prompt, and in write mode the retry turn after a rejected draft ---
    def _messages(self, job: _Job, model: Runnable) -> list[BaseMessage]:
        preset, local = self._preset(), self._is_local(model)
        if preset.mode_for(local=local) == "facts":
            raise Unsuited("describe mode facts: the prose of the input, without this model")
        name = preset.prompt_for(local=local)
        prompt = self.prompts.get(name)
        system, human = prompt.render(**job.values)
        messages: list[BaseMessage] = [SystemMessage(system)]
        for said, answered in prompt.examples:  # example turns: a small model follows them, not a described form
            messages += [HumanMessage(said), AIMessage(answered)]
        messages.append(HumanMessage(human or ""))
        if job.draft is not None and preset.mode_for(local=local) == "write":
            follow_up, _ = self.prompts.get(f"{name}_retry").render(problems=job.problems,
                                                                     max_words=job.inp.max_words)
            messages += [AIMessage(job.draft), HumanMessage(follow_up)]
        return messages

    # --- after each draft: claims, length; decides whether to ask again ---
    def _findings(self, job: _Job, text: str, catalog: claims.Catalog | None) -> list[claims.Finding]:
        return claims.check(text, sources_of(job.inp, self.places), job.rules, feature="describe", catalog=catalog)

    def _built(self, job: _Job, catalog: claims.Catalog | None, *, opening: str = "") -> str:
        """The operator's facts as prose (`fallback.from_input`), checked like any text, within max_words: the
        opening is left out first, then sentences before the call to action (which always ends it)."""
        built = from_input(job.inp, backed=lambda sentence: not self._findings(job, sentence, catalog))
        body = claims.strip(built, self._findings(job, built, catalog))
        limit = job.inp.max_words
        if opening and len(opening.split()) + len(body.split()) <= limit:
            return f"{opening} {body}"
        if len(body.split()) <= limit:
            return body
        *facts, action = claims.split_sentences(body)
        kept, _ = claims.trim_words(" ".join(facts), limit - len(action.split()))
        job.flags.append(f"trimmed: cut to at most {limit} words")
        return f"{kept} {action}".strip()

    def _review(self, job: _Job, text: str, attempt: int, mode: DescribeMode = "write") -> tuple[str, bool, bool]:
        """Returns the cleaned text, whether it is grounded, and whether to ask the model again."""
        catalog = self.catalog() if self.catalog is not None else None
        if mode == "compose":
            return self._review_opening(job, text, attempt, catalog)
        findings = self._findings(job, text, catalog)
        clean = claims.strip(text, findings) if findings else text
        if clean and not about(clean, job.inp):  # speaks of something else: no description at all
            findings.append(claims.Finding("unrelated", "names none of the listing's city, services or title", clean))
            clean = ""
        enough = len(clean.split()) >= self.min_words
        if findings and not enough and attempt < self.max_attempts:
            ids = ", ".join(dict.fromkeys(f.rule for f in findings))
            job.flags.append(f"regenerated: draft {attempt} made unsupported claims ({ids})")
            job.draft, job.problems = text, "\n".join(f"- {f.reason}: \"{f.sentence}\"" for f in findings)
            return clean, False, True
        job.flags.extend(f"removed {f}" for f in dict.fromkeys(f.flag for f in findings))
        if findings and not enough:  # the last attempt: the operator's facts as prose, checked the same way
            job.flags.append("replaced: too little of the model's text was backed; built from the input")
            return (clean := self._built(job, catalog)), bool(clean), False
        return self._trimmed(job, clean), bool(clean), False

    def _review_opening(self, job: _Job, text: str, attempt: int,
                        catalog: claims.Catalog | None) -> tuple[str, bool, bool]:
        """Compose mode: the model's first sentence opens the operator's facts as prose, if it is usable."""
        opening = first_sentence(text)
        findings: list[claims.Finding] = []
        if not reads_as_prose(opening):
            findings.append(claims.Finding("form", "is not one sentence of prose", opening))
        else:
            findings = self._findings(job, opening, catalog)
            if not findings and not names_listing(opening, job.inp):
                findings.append(claims.Finding("unrelated", "does not name the listing's city and a service",
                                               opening))
        if findings and attempt < self.max_attempts:
            ids = ", ".join(dict.fromkeys(f.rule for f in findings))
            job.flags.append(f"regenerated: opening sentence {attempt} was not usable ({ids})")
            return "", False, True
        if findings:
            job.flags.extend(f"removed {f}" for f in dict.fromkeys(f.flag for f in findings))
            job.flags.append("replaced: the model's opening sentence was not usable; built from the input")
            clean = self._built(job, catalog)
        else:
            clean = self._built(job, catalog, opening=opening)
            kept = clean.startswith(opening)
            job.flags.append("composed: the operator's facts as prose; the model wrote the opening sentence" if kept
                             else "composed: the operator's facts as prose; the model's opening left out for length")
        return clean, bool(clean), False

    def _facts_only(self, job: _Job, exc: NoSuitedModel) -> tuple[str, bool]:
        """No model wrote (mode facts for the models not asked; any other failed): the input's prose."""
        failed = "; the models asked failed" if exc.__cause__ is not None else ""
        job.flags.append(f"composed: the operator's facts as prose, without a model (describe mode facts{failed})")
        clean = self._built(job, self.catalog() if self.catalog is not None else None)
        return clean, bool(clean)

    @staticmethod
    def _trimmed(job: _Job, text: str) -> str:
        clean, trimmed = claims.trim_words(text, job.inp.max_words)
        if trimmed:
            job.flags.append(f"trimmed: cut to at most {job.inp.max_words} words")
        return clean

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
        attempt, text, grounded, model, again = 0, "", False, self.default_model, True
        while again:
            attempt += 1
            try:
                used, answer = self.models.invoke_with_model(lambda m: self._messages(job, m), child)
            except NoSuitedModel as exc:
                (text, grounded), model, again = self._facts_only(job, exc), "", False
                continue
            model = self._model_name(answer)
            text, grounded, again = self._review(job, _text(answer), attempt, self._mode(used))
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
        attempt, text, grounded, model, again = 0, "", False, self.default_model, True
        while again:
            attempt += 1
            try:
                used, answer = await self.models.ainvoke_with_model(lambda m: self._messages(job, m), child)
            except NoSuitedModel as exc:
                (text, grounded), model, again = self._facts_only(job, exc), "", False
                continue
            model = self._model_name(answer)
            text, grounded, again = self._review(job, _text(answer), attempt, self._mode(used))
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
