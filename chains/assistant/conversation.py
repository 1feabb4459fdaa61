"""The whole conversation as one search request: deterministic, in microseconds, on any model.

Each customer turn is read by the search's own parser (retrieval/query.py); the readings are merged, the
newest turn winning field by field:

    "I need a roof inspection"  -> category inspection
    "I'm in Livonia"            -> + place Livonia                      => roof inspection near Livonia
    "cheaper ones, under $300?" -> + max price 300, cheapest first      => ... under $300

- place (inside or outside the area): the newest turn that names one;
- category: the newest turn that names one. A different category is a new topic: price cap, features,
  insurance and the words searched from before it are dropped; the place and radius stay;
- price cap, radius: the newest turn that states one (since the topic started);
- features, insurance, words: gathered since the topic started; a feature taken back ("forget the night
  thing", "4k isn't needed after all") is dropped;
- photos <-> video said alone ("what about video instead?") swaps the medium: the subject's words stay; the
  service asked for turned down beside another ("make it photos, not video") swaps like "instead";
- a word turned down ("actually not food, medicine", "forget the night thing") is searched no longer;
- order: "cheaper/cheapest" sorts by price, "best rated"/"better reviews" by rating, "closest" by distance
  (newest wins); a comparative ("anyone with better reviews?") asks for other listings (`wants_others`);
- a question about what was shown ("do they use RTK?") refines the request: its category words are ignored;
  the assistant (steps.py) leaves a turn about the listings shown out of the request altogether (`keeps_shown`:
  "are they insured?", "is the Pontiac one insured?", "how do I book the third one"), so they stay shown, and
  answers it from their values; a turn that asks for listings (`asks_anew`: "ok but any insured ones?", "what
  about in Canton?") is read like any other; "show me other options" (`asks_more`) pages past those shown;
- a word that refers back to something named earlier as part of another service ("golf course" then "the
  course is in Metamora"), or that says where ("a barn on our farm near Dexter"), names no new category.

The assistant's own turns are not read: they quote listings, which would steer the search towards itself.
Small talk ("hello", "thanks!", "good night"; not "and at night") and a conversation with nothing to search
(no category, place, price, feature or insurance; a time alone, "today", "at night", is nothing) give no
request: nothing is retrieved, nothing cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from chains.assistant.amounts import amounts
from retrieval.llm_hints import Hints, merge_hints
from retrieval.query import Interpreted, QueryParser, normalize, spell_out
from retrieval.text import STOPWORDS, stem, tokenize
from retrieval.vocab import (
    CATEGORY_PATTERNS,
    FEATURE_PATTERNS,
    FIRM,
    NEGATION_PATTERN,
    SCENERY_WHERE_PATTERN,
    SERVICE_HINT_PATTERNS,
    SERVICES,
    named_services,
)

__all__ = ["Order", "Request", "about_shown", "asks_anew", "asks_more", "condense", "is_small_talk", "keeps_shown",
           "llm_query", "refers", "wants_others", "with_hints"]

Order = Literal["relevance", "price", "rating", "distance"]

_WORD = re.compile(r"[a-z']+|\d+")
_SMALL_TALK_WORDS = """
    hi hello hey hiya howdy yo thanks thank thx ty cheers ok okay k great cool nice awesome perfect fine
    good morning afternoon evening night bye goodbye see later yes yeah yep no nope sure please sounds lol
    wow alright right got gotcha welcome there much lot so very all thats done set helpful helps appreciate
    appreciated bunch ton again now"""
_SMALL_TALK = frozenset(_SMALL_TALK_WORDS.split())
_PARTING = frozenset({"night", "evening"})  # small talk only after "good": alone they ask for a time
_ORDER: tuple[tuple[Order, re.Pattern[str]], ...] = (
    # "it's cheaper to just drive it" compares with doing without: it asks for no cheaper listing
    ("price", re.compile(r"\b(cheap(er|est)(?! to\b)|less expensive|lower[- ]priced?|lowest price|least expensive|"
                         r"most affordable|more affordable)\b|\b(?:sort|order|rank)(?:ed)? (?:them )?by (?:the )?"
                         r"(?:price|prices|cost)\b"
                         # "on a budget" asks for the cheap ones; "budget is about $200", "budget maybe 1500 tops"
                         # only set a cap (a number soon after it)
                         # ("same budget" keeps the cap said before: it asks for nothing cheaper)
                         r"|(?<!same )\bbudget\b(?!'?s?[^.?!\d]{0,25}\d)")),
    ("rating", re.compile(r"\b(best|highest|top)[- ]rated\b|\bbest reviews?\b|\bhighest rating\b"
                          # "any with better reviews?", "someone more experienced", "higher rated ones"
                          r"|\b(?:better|higher|highly|well)[- ](?:rated|ratings?|reviews?|reviewed)\b"
                          r"|\bmore (?:reviews|experience|experienced|established)\b"
                          r"|\bmost (?:reviews|reviewed|ratings|stars|experience|experienced)\b"
                          r"|\b(?:sort|order|rank)(?:ed)? (?:them )?by (?:the )?(?:ratings?|reviews|stars)\b")),
    ("distance", re.compile(r"\b(closest|nearest|nearer|closer)\b|\b(?:sort|order|rank)(?:ed)? (?:them )?by "
                            r"(?:the )?distance\b")),
)
# Asking for other listings than those shown, better by some measure ("any cheaper?", "someone with better
# reviews?", "closer ones?"): a comparative, not "which of them is cheapest?"
_COMPARATIVE = re.compile(
    r"\b(?:cheaper|less expensive|lower[- ]priced?|more affordable|closer|nearer|more experience[d]?|"
    r"(?:better|higher|highly)[- ](?:rated|ratings?|reviews?|reviewed)|more (?:reviews|established))\b")
# A question about what was already shown ("do they use RTK?", "are any of them insured?") refines the request:
# a category word in it ("survey-grade") does not start a new topic.
# the words before a question proper: "ok so", "actually one more q -", "btw"
_LEAD = (r"^\W*(?:(?:and|so|but|ok|okay|also|great|cool|thanks|hmm|well|actually|oh|btw|(?:one more|quick|another) "
         r"(?:q|question|thing)|question)\W+)*")
_ABOUT_SHOWN = re.compile(
    rf"{_LEAD}(?:"
    r"(?:do|does|did|can|could|will|would|are|is|were|have|has)\s+"
    r"(?:they|them|those|these|it|any|either|both|all|one|that|this|the (?:first|second|third|last|cheapest))\b"
    r"|which\s+(?:one|ones|of)\b|(?:any|either|none|all|both|one|each) of (?:them|those|these|the|you)\b"
    # "how about the second, ...", "the first one, does it ...", "is there one that ...", "any that also ..."
    r"|(?:(?:how|what) about )?the (?:first|second|third|last|1st|2nd|3rd)\b"
    r"(?! (?:time|house|home|property|place|lot|building|site|location|job|address|field|farm|wedding|event))"
    r"|(?:can i get|is there|are there|got|any) (?:one|ones) (?:that|who|with)\b|any (?:that|who)\b)",
    re.IGNORECASE,
)
# A turn that points at one of the listings shown: by its place in the list ("the second one", "that first
# company", "the last one") or by a word of its own ("the Pontiac one", "the cheap guys"): `aspects.referred`
# says which
_REFERS = re.compile(
    r"\b(?:the|that|this)\s+(?:very\s+)?(?:first|second|third|last|1st|2nd|3rd)\b"
    r"(?! (?:time|house|home|property|place|lot|building|site|location|job|address|field|farm|wedding|event|floor|"
    r"step|thing))"
    r"|\b(?:the|that|this)\s+(?:[a-z.]+\s+){1,2}(?:one|company|outfit|operator|listing|guy|guys|pilot|option)\b"
    r"|\bthat (?:one|company|outfit|operator|listing|guy|pilot)\b"
    r"|\b(?:number|no\.?|#)\s?[123]\b")
# A turn that asks about what was shown without a question's form: "tell me more about them", "how do I book
# the third one?", "how would we hire one of them"
_ASKS_ABOUT = re.compile(
    r"\b(?:tell me (?:more )?about|(?:more|any) (?:info|information|details) (?:on|about)|"
    r"how (?:do|can|would|should) (?:i|we) (?:book|hire|contact|reach|schedule|get in touch with|go about booking)|"
    r"(?:i want to|id like to|lets|can i|could i) (?:book|hire|contact|go with)|"
    r"what (?:else )?(?:do|can) (?:they|you tell me)|sounds good|"
    # "what's the difference between them?", "how do those compare?": each one's details side by side
    r"differen(?:ce|ces|t) between (?:them|those|these|the|each)|how do (?:they|those|these|the \w+) compare|"
    r"compare (?:them|those|these|the (?:two|three|\w+ ones))|pros and cons)\b")
# "of those" said of the listings ("which of those is insured?"), not of a thing ("one of those fpv drones")
_LISTED = (r"(?=\s*(?:$|[?,!;:]|(?:is|are|has|have|had|do|does|did|can|could|would|will|guys|companies|operators|"
           r"options|listings|pilots|ones|three|two|3|2)\b))")
# Words that point at the listings shown as a group: "out of those", "is anyone there ...", "are the teachers ..."
_POINTS = re.compile(
    r"\b(?:out )?of (?:them|the (?:three|3|two|2))\b"
    # "of those" said of the listings, not "one of those fpv drones"
    rf"|\b(?:out )?of (?:those|these){_LISTED}"
    # a question whose subject is the listings shown ("are they insured?", "can any of them come saturday?"); not
    # "can it be streamed live?" (it: the job)
    rf"|{_LEAD}"
    r"(?:do|does|did|can|could|will|would|are|r|is|were|have|has)\s+(?:they|them|those|these|any|either|both|all|each|"
    r"none|one of (?:them|those|these))\b"
    rf"|\bwhich\s+(?:one|ones|of|is|are|has|have)\b|\b(?:any|either|none|all|both|one|each) of (?:them\b|"
    rf"(?:those|these){_LISTED})"
    r"|\b(?:any|anyone|anybody|someone|somebody|either) (?:there|of (?:them|those|these|you))\b"
    rf"|{_LEAD}(?:are|do|can|will|would|have|were|did) (?:the|all the|all those) "
    r"[a-z]+s\b")
# Asking for more of the same: the listings after those shown ("show me some other options", "anyone else?")
_TERSE_MORE = (r"^\W*(?:(?:and|so|but|ok|okay|k|hmm|any|got any|are there|is there|there|anymore)\W+)*"
               r"(?:others?|more|who else|any more)\W*$")  # the whole turn: "others?", "any more?", "who else"
_MORE = re.compile(
    r"\b(?:(?:other|different|more) (?:ones|options|operators|companies|listings|choices|pilots|results)|"
    rf"any(?:one|body)? else|some(?:one|body) else|anything else)\b|{_TERSE_MORE}")
# A turn that asks for listings, whatever else it says ("ok but any insured ones?", "can you find ones that
# work saturdays", "show me other options", "what about in Canton?"): a new search
_ASKS_ANEW = re.compile(
    r"\b(?:find|search|look(?:ing)? (?:for|up)|show me|pull up|got any|"
    r"(?:other|different|new|more) (?:ones|options|operators|companies|listings|choices|pilots|results)|"
    r"any(?:one|body)? else|some(?:one|body) else|anything else|"
    r"(?:any|some) (?:\w+ )?ones\b|ones (?:that|who|with|which)|any (?:that|who)\b|"
    r"(?:what|how) about (?!(?:the|that|this|them|those|these|they|it|its|their)\b))"
    rf"|{_TERSE_MORE}")
# Features that say when, not what: alone they ask for nothing ("nice day for flying today")
_WHEN = frozenset({"same_day", "weekend_availability", "night_ops", "emergency_callout"})
# A question about the listings shown that names a place asks whether they go there ("do they cover Toledo?")
_COVER = re.compile(r"\b(?:covers?|serves?|service|comes?|travels?|go|goes|drive|fly|work|out to)\b")
# A turn that swaps the service asked for for another of the same kind ("crop scouting instead")
_SWITCH = re.compile(r"\b(?:instead|rather|change of plans|switch|scratch|never ?mind|forget|cancel|after all|"
                     r"on second thought|changed? my mind|(?:what|how) about just|"
                     # "and regular roof ones same area" after a thermal scan: the plain kind of the service
                     r"(?:regular|normal|plain|ordinary|standard) (?:\w+ )?(?:ones?|kind|type|photos?|pics?|"
                     r"pictures?|videos?|inspections?))\b")
# A second need said as such ("one more thing, ... a video of the grand opening", "in the meantime I still need
# ..."): a service read in it is the new topic, even one that could be the old one's medium (video of a build)
_ANOTHER = re.compile(r"\b(?:one more thing|another thing|(?:one )?other thing|also need|also looking for|"
                      r"in the meantime|separate(?:ly)?|unrelated|different (?:job|thing|project|question)|"
                      r"while (?:i have|ive got|i got) you|on another note|next up)\b")
# A cap said again as a bare number once a cap was set ("wait, 300 was wrong, more like 450")
_RECAP = re.compile(
    r"(?:\b(?:more like|closer to|make (?:that|it)|change (?:that|it) to|i meant|meant to say|meant|say)\s+"
    # "sorry, 5000" (a turn that only corrects the number), "budget is higher, like 1500"
    r"|^\W*(?:(?:sorry|oops|whoops|typo|correction|i mean|wait|no|nope|actually|scratch that)\W+)+"
    r"|\b(?:higher|bigger|more|raise it)(?: to)?[,:]?\s+)"
    r"(?:(?:about|around|maybe|like)\s+)?\$?\s*(?P<n>\d[\d,]*)(?![\d,])(?P<k>k\b)?"
    r"(?=\s*(?:$|[.,!?;)]|dollars|bucks|usd|max|tops|or |per |a |an |each |for |instead|then|total))"
)
# A cap taken back: "budget doesn't matter", "price is no object"
_UNCAP = re.compile(
    r"\b(?:budget|price|cost|money)s? (?:doesnt|does not|dont|isnt|is not|wont be) (?:matter|an issue|a concern|"
    r"a problem)|\bno budget\b|\bprice is no object|\b(?:any|whatever) (?:price|budget)\b"
    # "forget the budget", "scratch the price limit", "pay more for someone good"
    r"|\b(?:forget|scratch|drop|ignore|never ?mind|no need for) (?:about )?(?:the |my |that |a )?(?:budget|price|cap|"
    r"limit|price limit|max)\b|\b(?:pay|spend) (?:a bit |a little |a lot )?more\b"
)
# A feature taken back after it ("night flying isn't needed after all", "the thermal part doesn't matter"); one
# taken back before it ("forget the night thing", "don't need 4k") is the parser's own turned-down phrase
_UNNEEDED = re.compile(
    r"\W*(?:[a-z]+\W+){0,3}?(?:isnt|is not|arent|are not|not|doesnt|does not|dont|wont be|no longer)\s+(?:really\s+|"
    r"actually\s+|even\s+)?(?:needed|necessary|required|important|a must|a requirement|matter|an issue|need(?:ed)?)\b"
)
# Someone else's place, where the job happens ("my buddy has a farm there", "my in-laws' barn"): it names no
# service (the customer's own "we have a roof leak" may)
_KIN = (r"(?:buddy|friend|pal|dad|father|mom|mother|uncle|aunt|cousin|brother|sister|neighbou?r|family|"
        r"grandpa|grandma|grandparent|in-?law|boss|client)")
_THEIRS = re.compile(
    rf"\b(?:(?:my|our|a|his|her|their)\s+{_KIN}s?\s+(?:has|have|had|owns?|runs?|got)\s+|{_KIN}s\s+)"
    r"(?:(?:a|an|the|some|this|that|their|his|her)\s+)?(?:[a-z]+\s+)?$"
)
# An outside place said as where someone comes from, not where the job is ("we moved here from Chicago", "my
# brother in Toledo", "the band flies in from Toronto"): it moves nothing, and a plain "from X" moves nothing
# either once a place of ours is known ("roof inspection in Monroe" then "I'll drive up from Toledo")
_PASSING = re.compile(
    r"(?:\b(?:moved|moving|relocated|relocating|transferred|came|coming|driving|drove|flying|flew|visiting|"
    r"originally|here|up|down|over|in|out|back)\s+from"
    r"|\bused to (?:live|be|work|stay) (?:in|near|by|around)|\bgrew up (?:in|near|around)|\bback (?:home )?in"
    # "my brother in Toledo" (but "it's for my mom in Toledo" says where the job is)
    rf"|(?<!for )\b(?:my|our|his|her|their)\s+{_KIN}s?\s+(?:(?:who\s+)?(?:lives?|living|is|are|works?|stays?)\s+)?"
    r"(?:(?:over|down|up|out)\s+)?(?:in|near))"
    r"\s+$"
)
_FROM = re.compile(r"\bfrom\s+(?:[a-z]+[,;]?\s+){0,3}$")
# Photos and video as a medium: the services that deliver them themselves (a property video tour, progress
# photos), and the words that name only the medium
_TAKES_MEDIA = frozenset({"real_estate", "construction", "inspection", "mapping_surveying", "thermal_imaging"})
_MEDIA = frozenset({"videography", "aerial_photography"})
_MEDIUM = re.compile(r"\b(?:(?:aerial|drone|4k|hd|overhead|some|a few|nice) )?(?:videos?|vids?|footage|photos?|"
                     r"pictures?|pics?|shots?|stills?|images?|aerials)\b")
# Words that point at the listings shown ("their drones", "one with", "any of those")
_SHOWN = re.compile(
    r"\b(?:they|them|their|theirs|those|these|(?:one|ones|any|anyone|someone|somebody|something|drones?) with)\b")
# Words of a turn that carry nothing to search ("which one", "any of them"): the parser keeps them.
_FILLER_WORDS = """
    one ones them those which other others more else any also too much many how does do did im ive id whats
    who whom whose cost costs price prices pricing cheap cheaper cheapest affordable closest nearest nearer
    closer rated rating top highest best should could would may might just like know tell show give
    recommend suggest someone somebody anyone anybody hire book about actually ok okay then now instead
    still drone drones uav uas service services company companies pilot pilots operator operators offer offers
    available options kind kinds type types sort forget search searching finding look needs wants got help
    oh sorry hmm um uh btw well wait yeah yes no nope sure fine lol thanks thank were its theyre youre ill
    live lives living located based sorry meant mean meaning said should've shouldve correction typo mistake
    never mind nevermind scratch instead rather plan works matters matter anyway maybe guess think"""
_FILLER = frozenset(_FILLER_WORDS.split())


@dataclass(frozen=True)
class Request:
    """What the conversation asks the search for.

    Attributes:
        interpreted: the merged reading (what is searched and filtered); None when there is nothing to search.
        order: how to order what the search found.
        small_talk: the newest turn is a greeting or thanks.
    """

    interpreted: Interpreted | None
    order: Order = "relevance"
    small_talk: bool = False
    worded: bool = False  # the customer's turns carry words to search beyond place, price and filler
    skip: int = 0  # pages of `k` listings shown already and asked past ("show me other options")
    about_shown: bool = False  # the newest turn asks about the listings shown, which this request finds again
    sizes: tuple[tuple[str, float], ...] = ()  # the job's size in a unit the customer gave ("200 acres": amounts.py)
    topic_from: int = 0  # the turn (of those condensed) the current topic started at: a job's size holds since
    missing: tuple[str, ...] = ()  # services asked for that no listing offers ("drone light shows": unlisted.py)


    @property
    def broad(self) -> bool:
        """A place and nothing else to go on ("what can I book in Troy?"): no service, price, feature, nor a
        word to search ("someone to count my cows in Almont" has words: the search looks for them); or a place
        and a service no listing offers, with no other job asked ("a light show at our party in Dearborn")."""
        it = self.interpreted
        return (it is not None and it.place is not None and it.category is None and (bool(self.missing) or (
            not it.features and it.max_price is None and not it.insured and not self.worded)))

    @property
    def place_involved(self) -> bool:
        it = self.interpreted
        return it is not None and (it.place is not None or it.outside_place is not None)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def is_small_talk(text: str) -> bool:
    """A greeting, thanks or goodbye, and nothing else ("Hi!", "thanks a lot", "ok great"); "near me" is no
    small talk (stopwords alone), nor "and at night" (a time asked for, not "good night")."""
    words = [w.replace("'", "") for w in _words(text)]
    # "good night" takes leave; "and at night", "in the evening" say when to fly
    timed = any(w in _PARTING and (i == 0 or words[i - 1] != "good") for i, w in enumerate(words))
    return not timed and any(w in _SMALL_TALK for w in words) and all(
        w in _SMALL_TALK or w in STOPWORDS for w in words)


def about_shown(turn: str) -> bool:
    """Whether a turn asks about the listings already shown ("do they use RTK?", "are any of them insured?",
    "the second one, does it...") rather than for listings ("Who can inspect my roof?")."""
    return _ABOUT_SHOWN.search(turn) is not None


def refers(turn: str) -> bool:
    """Whether a turn points at one of the listings shown ("the second one", "that Pontiac company")."""
    return _REFERS.search(normalize(turn)) is not None


def asks_anew(turn: str) -> bool:
    """Whether a turn asks for listings (others, or ones that fit something new): "ok but any insured ones?",
    "show me other options", "what about in Canton?"; not "are they insured?", "which one is cheapest?"."""
    low = normalize(turn)
    return _ASKS_ANEW.search(low) is not None or (wants_others(low) and not _WHICH.match(low))


def keeps_shown(turn: str) -> bool:
    """Whether a turn is about the listings already shown and asks for no others: a question over them ("are
    they insured?", "can any of them come on a saturday?", "which of these is closest?"), one of them pointed at
    ("is the Pontiac one insured?", "the last one - do they teach weekends?") or asked about ("tell me more
    about them", "how do I book the third one"). The answer keeps them (the same search: the turn is no
    refinement) and says what was asked from their values, "none of them" included; a customer who wants
    others asks for them (`asks_anew`)."""
    if asks_anew(turn):
        return False
    low = normalize(turn)
    return any(p.search(low) is not None for p in (_REFERS, _ASKS_ABOUT, _POINTS))


def asks_more(turn: str) -> bool:
    """Whether a turn asks for other listings than those shown, no better by any measure ("show me some other
    options", "anyone else?"): the next ones of the same search."""
    return _MORE.search(normalize(turn)) is not None and not wants_others(turn)


_WHICH = re.compile(r"^\W*(?:(?:and|so|but|ok|okay|hmm|well)\W+)*(?:which|who|whos|whose)\b")


# "is the first one cheaper than the second?": two of those shown compared, no other listing asked for
_BETWEEN = re.compile(r"\bthan (?:the|that|this) (?:first|second|third|last|other)\b|\bthan (?:the )?\w+ one\b")


def wants_others(text: str) -> bool:
    """Whether a turn asks for other listings, better by some measure than those shown ("anything cheaper?",
    "do you have someone with better reviews?"), rather than which of the shown is best by it, or how two of
    them compare ("is the first one cheaper than the second?")."""
    low = text.lower().replace("’", "'")
    return _COMPARATIVE.search(low) is not None and _BETWEEN.search(low) is None


def _order(text: str) -> Order | None:
    low = text.lower()
    return next((name for name, pattern in _ORDER if pattern.search(low)), None)


def _content(it: Interpreted) -> list[str]:
    """The words a turn adds to the search (the parser's words, without stopwords and filler; a filler word
    that names a service with the others stays: "help searching" + "rescue" is search and rescue)."""
    named = {t for s in named_services(it.text, it.categories) for t in tokenize(s)}
    return [w for w in it.text.split()
            if w not in STOPWORDS and (w not in _FILLER or stem(w) in named) and not w.isdigit()]


def _said(low: str, category: str) -> list[re.Match[str]]:
    """The phrases of `category` in a normalised turn."""
    return [m for p, _ in CATEGORY_PATTERNS[category] for m in p.finditer(low)]  # type: ignore[index]


def _gear(low: str) -> list[tuple[int, int]]:
    """Where a normalised turn asks for equipment (any feature's phrase)."""
    return [g.span() for p in FEATURE_PATTERNS.values() for g in p.finditer(low)]


def _inside(m: re.Match[str], spans: list[tuple[int, int]]) -> bool:
    return any(a <= m.start() and m.end() <= b for a, b in spans)


def _incidental(low: str, category: str, earlier: list[tuple[str, list[str]]]) -> bool:
    """Whether every phrase of `category` in this turn (normalised: `low`) names no new service: it says where
    ("a barn on our farm near Dexter", "at a vineyard"), or it was said before (`earlier`) in a turn not read
    as that category ("golf course" -> aerial photography; then "the course" is the same course), or it is
    equipment asked of the service already asked for ("can their drones do thermal?", "one with an infrared
    camera", "it has to have a heat camera", "the fpv kind") — unless the turn swaps services ("thermal instead").
    """
    said = _said(low, category)
    # equipment, unless the words name a service of the category ("scan the house for heat loss": building heat
    # loss, though "heat loss" also asks for a heat camera)
    named = not _SHOWN.search(low) and bool(named_services(low, [category]))
    gear = [] if (_SWITCH.search(low) and not _SHOWN.search(low)) or named else _gear(low)
    return bool(said) and all(
        SCENERY_WHERE_PATTERN.search(low, max(0, m.start() - 40), m.start()) is not None
        or _THEIRS.search(low, max(0, m.start() - 60), m.start()) is not None
        or any(category not in cats and re.search(rf"\b{re.escape(m.group(0))}\b", text) for text, cats in earlier)
        or any(a < m.end() and m.start() < b for a, b in gear)
        for m in said
    )


def _gear_only(low: str, category: str) -> bool:
    """Whether `category` is named in this turn (normalised: `low`) only by words that ask for equipment
    ("need thermal and night ops": a thermal camera, not yet a thermal imaging job)."""
    said, gear = _said(low, category), _gear(low)
    return bool(said) and all(_inside(m, gear) for m in said)


def _loose(low: str, category: str) -> bool:
    """Whether `category` is named in this turn (normalised: `low`) by a loose word only ("no place to land",
    "a few shots"): it refines the service asked for, it starts no new one (two of them do: "photos of the
    golf course")."""
    said = [w for p, w in CATEGORY_PATTERNS[category] for _ in p.finditer(low)]  # type: ignore[index]
    return sum(said) < FIRM


def _medium(low: str, category: str, current: str) -> bool:
    """Whether `category` (photos, video) is only the medium of the `current` service, which delivers it
    ("selling my house" then "can they do video too?": a property video tour, not a videographer)."""
    if current not in _TAKES_MEDIA or category not in _MEDIA:
        return False
    media = [m.span() for m in _MEDIUM.finditer(low)]
    return all(_inside(m, media) for m in _said(low, category))


def medium_of(turn: str, category: str, current: str) -> bool:
    """Whether `category` is named in a turn only as the medium the `current` service delivers ("how long until I
    get the photos back" of real estate listings: their photos, no photographer asked for)."""
    return _medium(normalize(turn), category, current)


def _other_medium(low: str, category: str | None, current: str | None) -> bool:
    """Whether a normalised turn (`low`) swaps the medium of the service asked for, naming nothing but the new
    medium (photos <-> video: "what about video instead?"); its subject still holds."""
    if category is None or current is None or category == current or {category, current} - _MEDIA:
        return False
    media = [m.span() for m in _MEDIUM.finditer(low)]
    said = _said(low, category)
    return bool(said) and all(_inside(m, media) for m in said)


def _in_passing(low: str, it: Interpreted, merged: Interpreted, parser: QueryParser) -> bool:
    """Whether the outside place of this turn (normalised: `low`) is said as where someone comes from or lives,
    not where the job is (`_PASSING`; a plain "from" too when a place of ours is already known)."""
    assert it.outside_place is not None
    name = it.outside_place.name.split(",")[0]
    names = next(((o.name, *o.aliases) for o in parser.gazetteer.outside if o.name == name), (name,))
    for n in names:
        m = re.search(rf"\b{re.escape(normalize(n))}\b", low)
        if m is not None:
            before = low[max(0, m.start() - 50) : m.start()]
            plain = merged.place is not None and _FROM.search(before) is not None
            return plain or _PASSING.search(before) is not None
    return False


def _hinted(low: str, category: str) -> list[str]:
    """The words of the services of `category` that a normalised turn (`low`) that names no category of its own
    describes by their situation (retrieval/vocab/services.py): "can they also do video?" asked of real estate
    photos is a property video tour."""
    out: list[str] = []
    for service, pattern in _HINTS.get(category, ()):
        if any(NEGATION_PATTERN.search(low, max(0, m.start() - 32), m.start()) is None for m in pattern.finditer(low)):
            out += [w for w in tokenize(service) if w not in STOPWORDS]
    return out


_HINTS: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # category -> its services' situation phrases
for _service, (_category, _pattern) in SERVICE_HINT_PATTERNS.items():
    _HINTS.setdefault(_category, []).append((_service, _pattern))
# the words without which no feature is taken back (a quick test before the feature phrases are searched)
_TAKE_BACK = re.compile(r"\b(?:not?|never|forget|skip|scratch|ditch|cancel|instead|rather|dont|do not|isnt|arent|"
                        r"doesnt|wont|no longer|nevermind)\b")


def _taken_back(low: str) -> set[str]:
    """The features a normalised turn (`low`) names only to take back, every time: turned down before ("forget
    the night thing", as the parser reads it, "doesnt need to be at night") or after ("the night part isn't
    needed"); and the days asked for, when any day will do ("so any day works actually", "no rush")."""
    out: set[str] = set(_WHENEVER) if _ANY_DAY.search(low) else set()
    if _TAKE_BACK.search(low) is None:
        return out
    for name, p in FEATURE_PATTERNS.items():
        said = list(p.finditer(low))
        if said and all(NEGATION_PATTERN.search(low, max(0, m.start() - 32), m.start()) is not None
                        or _NEEDNT.search(low, max(0, m.start() - 32), m.start()) is not None
                        or _UNNEEDED.match(low, m.end()) is not None for m in said):
            out.add(name)
    return out


def takes_back(turn: str) -> set[str]:
    """The features a turn takes back (`_taken_back`), and "insured" when it takes back insurance ("ok it doesnt
    have to be insured"): a refinement of the request, not a question about the listings shown ("ok doesnt need
    to be at night" searches again without night flights)."""
    low = normalize(turn)
    return _taken_back(low) | ({"insured"} if _UNINSURED.search(low) else set())


# insurance no longer asked for: "doesnt have to be insured", "insurance isnt a must", "dont need them insured"
_UNINSURED = re.compile(r"\b(?:doesnt|does not|dont|do not|wont|no longer) (?:need|have|got) (?:to be |them |it )?"
                        r"(?:\w+ )?insured\b|\binsurance (?:isnt|is not|doesnt|does not) (?:\w+ )?(?:needed|required|"
                        r"necessary|a must|matter)\b|\b(?:forget|skip|never ?mind) (?:the )?insurance\b")


# "doesnt need to be at night", "dont have to be same day": what follows is not needed
_NEEDNT = re.compile(r"\b(?:doesnt|does not|dont|do not|wont|no longer) (?:need|have|got) to (?:be )?(?:\w+ )?$")
# any day will do: the days asked for are no longer needed
_ANY_DAY = re.compile(r"\bany (?:day|time|date|weekday)s? (?:works|is fine|is ok|is okay|is good|would work|will do)\b|"
                      r"\b(?:whenever|anytime|any time) (?:works|is fine|is ok)\b|\bno rush\b")
_WHENEVER = ("weekend_availability", "same_day")


# a word turned down, forward: "not food", "forget the night thing", "no more drone photos"
_REFUSED = re.compile(
    r"\b(?:not|no|never ?mind(?: about)?|forget(?: about)?|instead of|rather than|(?:dont|do not|no longer) "
    r"(?:need|want)|skip|scratch|ditch|cancel)\s+(?:(?:the|a|an|any|my|our|those|that|this|more|about)\s+)*"
    r"(?P<w>[a-z0-9]+)(?:\s+(?P<v>[a-z0-9]+))?")
_SERVICE_TOKENS = frozenset(w for offered in SERVICES.values() for name in offered for w in tokenize(name))


def _refused(low: str) -> set[str]:
    """The vocabulary words a normalised turn (`low`) turns down ("actually not food, medicine": food): searched
    before, they no longer are."""
    return {w for m in _REFUSED.finditer(low) for w in (m["w"], m["v"]) if w is not None and _vocabulary(w)}


@lru_cache(maxsize=4096)
def _vocabulary(word: str) -> bool:
    """Whether a word names a service, a category or a feature ("food", "night", "photos")."""
    return (stem(word) in _SERVICE_TOKENS or any(p.fullmatch(word) for p in FEATURE_PATTERNS.values())
            or any(p.fullmatch(word) for ps in CATEGORY_PATTERNS.values() for p, _ in ps))


def _turns_down(low: str, category: str) -> bool:
    """Whether a normalised turn (`low`) turns down a phrase of `category` ("make it photos, not video")."""
    said = _said(low, category)
    return any(NEGATION_PATTERN.search(low, max(0, m.start() - 32), m.start()) is not None for m in said)


def condense(turns: list[str], parser: QueryParser) -> Request:
    """Merges the customer's turns (oldest first) into one search request.

    Args:
        turns: the customer's messages, oldest first (the assistant's are left out).
        parser: the search's query parser (`SearchEngine.parser`).
    """
    if not turns or is_small_talk(turns[-1]):
        return Request(None, small_talk=bool(turns))
    merged = Interpreted(text="")
    words: list[str] = []
    order: Order = "relevance"
    since_topic: list[Interpreted] = []  # the readings of the turns since the topic started
    gear_only = False  # the service so far was read from equipment alone ("night ops and thermal"): no topic yet
    earlier: list[tuple[str, list[str]]] = []  # each turn so far, normalised, with the categories read in it
    topic_from = 0  # the turn the category started at: the job's size is read from there on, across services
    for i, raw in enumerate(turns):
        if is_small_talk(raw):
            continue
        it = parser.parse(raw)
        low = normalize(raw)
        switch, uncap = _SWITCH.search(low) is not None, _UNCAP.search(low) is not None
        # "make it photos, not video": the service asked for, turned down, is swapped like "instead"
        taking_back = _TAKE_BACK.search(low) is not None
        switch = switch or (taking_back and merged.category is not None and _turns_down(low, merged.category))
        refused = _refused(low) if taking_back else set()
        if refused:
            words = [w for w in words if w not in refused]
        if merged.category is not None and about_shown(raw):
            it.category, it.categories = None, []
            if it.outside_place is not None and not _COVER.search(low):  # "can they stream it to grandma in Florida?"
                it.outside_place = None
        if merged.category is not None and any(c != merged.category for c in it.categories):
            another = _ANOTHER.search(low) is not None
            back = [c for c in it.categories if c != merged.category and (_incidental(
                low, c, earlier if c not in merged.categories else [])
                or (not switch and (_loose(low, c) or (not another and _medium(low, c, merged.category)))))]
            if back:
                it.categories = [c for c in it.categories if c not in back]
                it.category = it.categories[0] if it.categories else None
        if it.place is None and it.outside_place is not None and _in_passing(low, it, merged, parser):
            it.outside_place = None
        earlier.append((low, list(it.categories)))
        if gear_only and it.category is not None and it.category not in merged.categories and not switch:
            pass  # "night ops and thermal" then "a missing teenager": the service at last, the equipment still holds
        elif _other_medium(low, it.category, merged.category):
            # "photos of the regatta" then "video instead": the same subject in another medium, at another price
            words, order, merged.max_price = [w for w in words if not _MEDIUM.fullmatch(w)], "relevance", None
            it.categories = [c for c in it.categories if c != merged.category]  # the medium left behind
        elif it.category is not None and merged.category is not None and it.category not in merged.categories:
            words, order = [], "relevance"  # a new topic: what was asked for the old one no longer holds
            merged.max_price, merged.features, merged.insured = None, [], None
            since_topic, topic_from = [], i
        elif it.category is not None and merged.category is not None and switch:
            words, since_topic = [], []  # "forget mapping, a land survey instead": the same kind, another service
            merged.features = [f for f in merged.features if f in _WHEN]  # the old service's gear (spraying's)
        since_topic.append(it)
        if it.category is not None:
            merged.category, merged.categories = it.category, list(it.categories)
            gear_only = _gear_only(low, it.category)
        if it.place is not None or it.outside_place is not None:
            merged.place, merged.outside_place, merged.fuzzy_place = it.place, it.outside_place, it.fuzzy_place
        if it.max_price is None and merged.max_price is not None:  # "300 was wrong, more like 450": the new cap
            again = _RECAP.search(spell_out(low))
            it.max_price = float(again["n"].replace(",", "")) * (1000 if again["k"] else 1) if again else None
        if it.max_price is not None:
            merged.max_price = it.max_price
        elif uncap:
            merged.max_price = None
        if it.radius_miles is not None:
            merged.radius_miles = it.radius_miles
        dropped = _taken_back(low)
        merged.features = [f for f in dict.fromkeys([*merged.features, *it.features]) if f not in dropped]
        if _UNINSURED.search(low):  # "ok it doesnt have to be insured i guess": taken back
            merged.insured = None
        else:
            merged.insured = True if it.insured else merged.insured
        words += [w for w in _content(it) if w not in words and w not in refused]
        if it.category is None and merged.category is not None:  # "can they also do video?" (a listing's tour)
            words += [w for w in _hinted(low, merged.category) if w not in words]
        order = (None if uncap else _order(raw)) or order
    wanted = (merged.category, merged.place, merged.outside_place, merged.max_price, merged.insured)
    if all(v is None for v in wanted) and not set(merged.features) - _WHEN:  # "flying today?" asks for nothing
        return Request(None, order=order)
    merged.text = " ".join(words) or (merged.category or "drone services").replace("_", " ")
    if len(since_topic) == 1:  # one turn asks it all: search its words as /search would (never worse than it)
        merged.text = since_topic[0].text
    return Request(merged, order=order, worded=bool(words), sizes=amounts(turns[topic_from:]), topic_from=topic_from)


# "ok the festival", "for the spraying", "back to the roof thing": a word of an earlier need, pointed at
_POINTED = re.compile(r"\b(?:the|that|our|my)\s+([a-z]{4,})\b")
_NOT_A_NEED = frozenset({
    "thing", "things", "stuff", "first", "second", "third", "last", "same", "whole", "other", "others", "place",
    "area", "price", "prices", "quote", "quotes", "listing", "listings", "guys", "people", "folks", "closest",
    "cheapest", "nearest", "best", "rest", "time", "date"})


def returns_to(turn: str, before: list[str], detour: list[str], parser: QueryParser) -> bool:
    """Whether a turn goes back to the need of the turns `before` after another one (`detour`): it names that
    need's service and not the detour's ("nice. ok but for the spraying, who's closest"), or, naming no service,
    points at a word only that need used ("jk. ok the festival, we need someone who can fly at night").

    Args:
        turn: the newest turn.
        before: the turns of the earlier need, oldest first.
        detour: the turns of the need asked since, oldest first.
        parser: the search's query parser.
    """
    then, now = condense(before, parser).interpreted, condense([*before, *detour], parser).interpreted
    if then is None or then.category is None or now is None:
        return False
    it = parser.parse(turn)
    if it.category is not None:
        return it.category in then.categories and it.category != now.category
    low = normalize(turn)
    earlier = {w for t in before for w in _words(normalize(t))}
    since = {w for t in detour for w in _words(normalize(t))}
    return any(w in earlier and w not in since and w not in _NOT_A_NEED and w not in _FILLER and w not in STOPWORDS
               for w in _POINTED.findall(low))


def llm_query(turns: list[str]) -> str:
    """The conversation as one text for the optional LLM step (the search's own prompt reads it)."""
    return " / ".join(f"earlier: {t}" for t in turns[:-1]) + (" / now: " if len(turns) > 1 else "") + turns[-1]


def with_hints(request: Request, hints: Hints, parser: QueryParser) -> Request:
    """The request with what the LLM step found and the words did not (the words' own findings win)."""
    it = request.interpreted if request.interpreted is not None else Interpreted(text="")
    merged = merge_hints(it, hints, parser)
    if not merged.llm:
        return request
    if not merged.text:
        merged.text = (merged.category or "drone services").replace("_", " ")
    return replace(request, interpreted=merged)
