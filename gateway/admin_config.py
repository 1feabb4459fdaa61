"""`GET /admin/config` (admin scope): the configuration a running server actually uses.

    settings     every setting's value and where it came from (default, environment, .env, argument);
                 secrets masked: SecretStr fields, any setting named *key/secret/token/password, passwords in
                 URLs (redis://user:***@host), query values and webhook paths
    presets      the preset in force per feature, and the models it resolves to (name, temperature, max tokens)
    prompts      each prompt file's version in force (sha256 prefix), its version on disk, a rejected edit
    data_files   the same for the files re-read after an edit (presets, claims, moderation, prices, guard)

`rejected_edits()` is what `/readyz` shows under `degraded.config`: files whose last edit was refused, while
their previous version keeps serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from pydantic import SecretStr

from chains.guard.fold import TABLE_FILE
from chains.guard.learned import MODEL_FILE
from chains.guard.rules import PATTERNS_FILE
from chains.local_llm import uses_local_model
from chains.models import model_chain
from gateway.auth import require_scope
from livefiles import file_version, status_of

__all__ = ["FEATURES", "MASK", "build_config_router", "config_files", "effective_config", "mask_setting",
           "rejected_edits"]

MASK = "********"
# feature -> (its preset, the routes it serves)
FEATURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "assistant": ("chat", ("/assistant", "/chat")),
    "describe": ("describe", ("/describe",)),
    "search": ("search", ("/search",)),
}
_SECRET_WORDS = {"key", "secret", "secrets", "token", "password", "passwd", "credentials", "dsn"}
_SECRET_TEXT_WORDS = {"keys"}  # a text named so (a list of keys) is masked; a path or a number is shown


def config_files(settings: Any) -> dict[str, Path]:
    """The data files re-read after an edit (`livefiles`), by name."""
    return {
        "presets": settings.presets_file, "claims": settings.describe_claims_file,
        "moderation": settings.moderation_rules_file, "pricing": settings.pricing_file,
        "guard_patterns": PATTERNS_FILE, "guard_confusables": TABLE_FILE, "guard_learned": MODEL_FILE,
    }


def _mask_url(url: str, *, whole_path: bool) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return url
    netloc = ("[" + host + "]" if ":" in host else host) + (f":{port}" if port else "")
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + MASK if parts.password else ''}@{netloc}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    path = "/" + MASK if whole_path and parts.path.strip("/") else parts.path
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _secret(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return True
    return isinstance(value, list | tuple | set | frozenset) and any(isinstance(v, SecretStr) for v in value)


def mask_setting(name: str, value: Any) -> Any:
    """A setting's value as /admin/config shows it: JSON-ready, secrets masked (None stays None).

    Args:
        name: the field name (a name with a word such as key, secret, token or password is masked whole).
        value: the field's value.
    """
    if value is None:
        return None
    words = set(name.lower().split("_"))
    if _secret(value) or words & _SECRET_WORDS:
        return MASK
    if words & _SECRET_TEXT_WORDS and isinstance(value, str | list | tuple):
        return MASK
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return _mask_url(value, whole_path="webhook" in name)
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_setting(name, v) for v in value]
    return MASK  # a type this view does not know: never risk showing it


def _settings(settings: Any) -> dict[str, dict[str, Any]]:
    sources = settings.sources()
    return {name: {"value": mask_setting(name, getattr(settings, name)), "source": sources[name],
                   "env": name.upper()} for name in type(settings).model_fields}


def _presets(services: Any) -> dict[str, dict[str, Any]]:
    settings = services.settings
    local = services.local_base_url if uses_local_model(settings) else None
    out: dict[str, dict[str, Any]] = {}
    for feature, (use_case, routes) in FEATURES.items():
        preset = settings.preset(use_case)
        models = [{"name": c.name, "temperature": c.temperature, "max_tokens": c.max_tokens, "local": c.is_local}
                  for c in model_chain(settings=settings, preset=preset, local_base_url=local)]
        out[feature] = {"preset": use_case, "routes": list(routes), "values": preset.model_dump(mode="json"),
                        "models": models}
    return out


def _file(path: Path, status: dict[str, Any] | None) -> dict[str, Any]:
    disk = file_version(path)
    body: dict[str, Any] = {"path": str(path), "sha256": None, "mtime": None,
                            "on_disk": disk.as_dict() if disk else None}
    if status is not None:
        body.update(sha256=status["sha256"], mtime=status["mtime"])
        if "rejected" in status:
            body["rejected"] = status["rejected"]
    return body


def _prompts(prompts: Any) -> dict[str, dict[str, Any]]:
    from errors import PromptError

    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(prompts.folder).glob("*.yaml")):
        name = path.stem
        body = _file(path, None)
        try:
            version = prompts.get(name).version
        except PromptError as exc:  # never valid since this process started: nothing in force
            body["rejected"] = {**(body["on_disk"] or {"sha256": "missing", "mtime": "-"}), "error": exc.message}
            out[name] = body
            continue
        disk = body["on_disk"]
        body.update(sha256=version, mtime=disk["mtime"] if disk and disk["sha256"] == version else None)
        if name in prompts.rejected and disk is not None:
            body["rejected"] = {**disk, "error": prompts.rejected[name]}
        out[name] = body
    return out


def rejected_edits(services: Any) -> dict[str, dict[str, Any]]:
    """Files whose last edit was refused (the previous version serves): name -> path, version in force, why."""
    out: dict[str, dict[str, Any]] = {}
    for name, path in config_files(services.settings).items():
        status = status_of(path)
        if status is not None and "rejected" in status:
            out[name] = {"path": str(path), "sha256": status["sha256"], "rejected": status["rejected"]}
    for name, error in dict(services.prompts.rejected).items():
        out[f"prompt:{name}"] = {"path": str(services.prompts.path(name)), "rejected": {"error": error}}
    return out


def effective_config(services: Any) -> dict[str, Any]:
    """The body of `GET /admin/config` (blocking: reads and hashes the files; run it in a worker thread)."""
    settings = services.settings
    return {
        "environment": settings.skymarket_env,
        "settings": _settings(settings),
        "presets": _presets(services),
        "prompts": _prompts(services.prompts),
        "data_files": {name: _file(path, status_of(path)) for name, path in config_files(settings).items()},
    }


def build_config_router() -> APIRouter:
    """`GET /admin/config`, behind the admin scope."""
    router = APIRouter(tags=["ops"], dependencies=[Depends(require_scope("admin"))])

    @router.get("/admin/config")
    async def admin_config(request: Request) -> dict[str, Any]:
        """The effective configuration: every setting with its source (secrets masked), the preset in force
        per feature, and the version of every prompt and data file (with any rejected edit)."""
        from anyio import to_thread

        return await to_thread.run_sync(effective_config, request.app.state.services)

    return router
