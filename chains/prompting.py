"""Prompt files: `prompts/<name>.yaml`, loaded by name, re-read when the file changes.

A prompt file has these keys and no others:

    description: what the prompt is for (optional)
    variables: [names the templates use]        # declared, so a typo is caught at load time
    values: {name: text}                        # optional: fixed values of some variables, kept in the file
                                                # so the version covers them (e.g. generated from data)
    system: the system prompt (a template)
    examples: [{human: text, ai: text}]         # optional: example turns sent between system and human, as a
                                                # conversation (a small model follows them better than examples
                                                # written into the system text); plain text, not templates
    human: the human turn (a template, optional: chat prompts take the conversation instead)

Templates use `{name}` placeholders (f-string syntax; `{{`/`}}` for literal braces). The loader rejects
unknown keys, undeclared or unused variables, and rendering with a variable missing, each with a
`PromptError` naming the file. Editing a file takes effect on the next call: `PromptStore.get()` compares
the file's modification time and size before reusing its cached parse; a bad edit of a file already in use
keeps its last good version (logged, and listed in `PromptStore.rejected`).
"""

from __future__ import annotations

import hashlib
import logging
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from errors import PromptError

__all__ = ["PromptFile", "PromptStore"]

log = logging.getLogger("skymarket.prompts")

_KEYS = {"description", "variables", "values", "system", "examples", "human"}


@dataclass(frozen=True)
class PromptFile:
    """One parsed prompt file. `version` is a short content hash, shown to people comparing outputs."""

    name: str
    system: str
    human: str | None
    variables: tuple[str, ...]
    version: str
    description: str = ""
    values: dict[str, str] = field(default_factory=dict)
    examples: tuple[tuple[str, str], ...] = ()  # (human, ai) example turns, sent before the human turn

    def render(self, **values: Any) -> tuple[str, str | None]:
        """Fills the templates.

        Args:
            **values: one value per declared variable without a value in the file (the file's win); extra
                values are ignored.

        Returns:
            The system text and the human text (None when the file has no human turn).

        Raises:
            PromptError: a declared variable has no value.
        """
        values = {**values, **self.values}
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise PromptError(f"prompt {self.name!r} needs variable(s) {', '.join(missing)}")
        system = self.system.format(**values)
        human = self.human.format(**values) if self.human is not None else None
        return system, human


def _fields(template: str, where: str) -> set[str]:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise PromptError(f"{where}: bad placeholder syntax ({exc}); write literal braces as {{{{ }}}}") from None


def parse_prompt(name: str, text: str, *, source: str) -> PromptFile:
    """Parses and validates a prompt file's text. `source` names the file in errors."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PromptError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise PromptError(f"{source}: expected a mapping with a 'system' key")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise PromptError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")
    system, human = raw.get("system"), raw.get("human")
    if not isinstance(system, str) or not system.strip():
        raise PromptError(f"{source}: 'system' must be a non-empty text")
    if human is not None and not isinstance(human, str):
        raise PromptError(f"{source}: 'human' must be a text")
    declared = raw.get("variables") or []
    if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
        raise PromptError(f"{source}: 'variables' must be a list of names")
    used = _fields(system, source) | (_fields(human, source) if human else set())
    if any(not f.isidentifier() for f in used):
        raise PromptError(f"{source}: placeholders must be plain names, got {sorted(used)}")
    if undeclared := sorted(used - set(declared)):
        raise PromptError(f"{source}: placeholder(s) {', '.join(undeclared)} not declared in 'variables'")
    if unused := sorted(set(declared) - used):
        raise PromptError(f"{source}: variable(s) {', '.join(unused)} declared but never used")
    fixed = raw.get("values") or {}
    if not isinstance(fixed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in fixed.items()):
        raise PromptError(f"{source}: 'values' must map variable names to texts")
    if stray := sorted(set(fixed) - set(declared)):
        raise PromptError(f"{source}: value(s) for {', '.join(stray)}, not declared in 'variables'")
    examples = raw.get("examples") or []
    if not isinstance(examples, list) or not all(
        isinstance(e, dict) and set(e) == {"human", "ai"} and all(isinstance(v, str) and v.strip() for v in e.values())
        for e in examples
    ):
        raise PromptError(f"{source}: 'examples' must be a list of {{human: text, ai: text}}")
    return PromptFile(
        name=name,
        system=system.strip(),
        human=human.strip() if human else None,
        variables=tuple(declared),
        version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
        description=str(raw.get("description") or ""),
        values=dict(fixed),
        examples=tuple((e["human"].strip(), e["ai"].strip()) for e in examples),
    )


class PromptStore:
    """Loads prompt files by name from one folder, re-reading a file when it changes on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, tuple[tuple[int, int], PromptFile]] = {}
        self._lock = threading.Lock()
        self.rejected: dict[str, str] = {}  # prompt name -> why its last edit was refused (the previous is used)

    def path(self, name: str) -> Path:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise PromptError(f"bad prompt name {name!r}")
        return self.folder / f"{name}.yaml"

    def get(self, name: str) -> PromptFile:
        """Returns the current version of prompt `name` (a stat per call; a parse only after an edit)."""
        path = self.path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise PromptError(f"no prompt file {path.name} in {self.folder}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._lock:
            try:
                prompt = parse_prompt(name, path.read_text(encoding="utf-8"), source=path.name)
            except PromptError as exc:
                if cached is None:
                    raise
                # A bad edit of a prompt in use: the last good version stays in force (never a 500).
                if self.rejected.get(name) != exc.message:
                    log.warning("%s: edit rejected, version %s stays in force: %s", path.name,
                                cached[1].version, exc.message)
                self.rejected[name] = exc.message
                self._cache[name] = (stamp, cached[1])
                return cached[1]
            self._cache[name] = (stamp, prompt)
            self.rejected.pop(name, None)
        return prompt
