"""`skymarket` command line: one entry point, one sub-command per area.

Each area registers its sub-command in `COMMANDS` (name -> "module:function"); the function takes the
remaining arguments and returns an exit code. Modules are imported only when their command runs.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serving:main", "run the HTTP service ([--workers N] [--host H] [--port P])"),
    "local-model": ("chains.local_llm:main", "prepare the embedded local model (prepare)"),
    "keys": ("gateway.keys:main", "API keys: create --name N --scopes chat | list | set-limits NAME | revoke NAME"),
    "usage": ("gateway.reports:main", "usage and cost report (--by day|key|model|route --since 7d)"),
    "audit": ("gateway.audit:main", "check the audit trail's hash chain (verify FILE)"),
    "data": ("gateway.rekey:main", "keys of the stored text: new-key | rotate-key [--dry-run] | check"),
    "prune": ("gateway.retention:main", "delete what is older than RETENTION_*_DAYS ([--dry-run] [--store S])"),
    "prompts": ("chains.evals.cli:main", "evaluate prompt files against golden cases (eval [NAME] --accept)"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print("usage: skymarket COMMAND [ARGS...]\n\ncommands:")
        for name, (_, help_) in COMMANDS.items():
            print(f"  {name:<14}{help_}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    target, _ = COMMANDS[args[0]]
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
