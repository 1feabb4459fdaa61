"""What the customer's newest turn asks about the listings — their prices, insurance, ratings, distance,
certifications or a feature, or which of them is first by one ("which has the best reviews?") — and the
sentence that answers it from the cited listings' own fields.

With the embedded 135M model most answers are the one built from the listings (the model's claims do not
survive the check), so "what would that cost?" or "are they insured?" must be answered there, from data:
every value below is copied from a listing, and what a listing does not state is said as "does not say", never
guessed. The phrases describe how people ask (`_ASKS`); a feature is asked with the search's own phrases
(retrieval/vocab/features.py), so "do any of them work weekends?" reads as weekend availability.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from chains.assistant.conversation import about_shown, refers
from chains.assistant.naming import names
from chains.claims import money, split_sentences
from retrieval.query import hinted_services, normalize
from retrieval.text import stem, tokenize
from retrieval.vocab import FEATURE_PATTERNS, named_services

__all__ = ["Aspect", "asked", "asked_services", "aspect_text", "details_text", "feature_words", "is_question",
           "lacking", "miles", "money", "names", "pick_text", "pointed", "pointed_top", "referred",
           "turnaround_text", "wants_details"]

Aspect = Literal["price", "insured", "rating", "distance", "certifications", "features", "pick", "contact",
                 "turnaround", "top_rating", "top_reviews", "top_price", "top_distance"]

# How a question about the listings is worded, by what it asks (lower-case text, word boundaries).
_ASKS: dict[Aspect, re.Pattern[str]] = {
    "price": re.compile(r"\b(?:how much|costs?|costing|price[sd]?|pricing|rates?|charges?|fees?|quotes?|"
                        r"expensive|afford(?:able)?|budget|ballpark|what do they ask|"
                        r"(?:cheaper|pricier|less expensive) than|"
                        # "is that per hour or for the whole thing?": the unit a price is for
                        r"per (?:hour|hr|project|job|acre|session|delivery|day|visit)|hourly|flat (?:rate|fee)|"
                        r"by the (?:hour|job|project)|(?:for )?the whole (?:thing|job|project)|"
                        r"(?:would|will|does|did) (?:that|it|this|they) (?:run|set) (?:me|us|him|her|them|you))\b"),
    # not the customer's own insurer: "a report I can send to my insurance", "for the insurance claim"
    "insured": re.compile(r"\b(?:insured|(?<!to my )(?<!to the )(?<!for my )(?<!for the )(?<!with my )insurance"
                          r"(?! (?:claim|claims|company|adjuster|agent|guy|people|folks))|liability|bonded|covered)\b"),
    "rating": re.compile(r"\b(?:ratings?|rated|reviews?|reputation|stars?|trustworthy|reliable|any good)\b"),
    "distance": re.compile(r"\b(?:how far|far away|far from|distance|miles? away|how close|located|based|"
                           r"where (?:are|is) (?:they|it|that|those|the \w+))\b"),
    # "which one would you pick?", "who do you recommend?": what each is first at, from their fields
    "pick": re.compile(r"\b(?:which|who|whos|what)\b[^.?!]{0,30}\b(?:would|should|do|did|can|could)\s+(?:you|u|i|we)\s+"
                       r"(?:\w+\s+)?(?:pick|choose|go with|recommend|suggest|hire|book|use|trust)\b"
                       r"|\b(?:recommend\w*|suggestions?|your (?:pick|choice|favorite)|best (?:one|option|choice|bet)|"
                       r"which (?:one )?(?:is|s) (?:the )?best|who(?:s| is) (?:the )?best)\b"
                       r"(?! (?:rated|reviews?|price))"),
    # "phone number?", "how do I call them": SkyMarket carries no contact details of theirs
    "contact": re.compile(r"\b(?:phone|phone numbers?|cell|call (?:them|him|her|the \w+)|e-?mails?|website|"
                          r"web ?site|contact (?:info|information|details|number))\b"),
    # "how long until I get the report", "how fast", "when would we get the photos": what their listings say of it
    "turnaround": re.compile(r"\bhow (?:long|fast|soon|quick(?:ly)?)\b|\bturn ?around\b|\bturn around time\b|"
                             r"\bwhen (?:will|would|do|can|could) (?:i|we) (?:get|have|see|receive)\b"),
    "certifications": re.compile(r"\b(?:certifi\w*|certs?|licen[cs]\w*|part 107|faa|waivers?|qualified|qualifications?|"
                                 r"accredit\w*)\b"),
}
# a sentence of a listing's own that says how soon ("usually within 48 hours", "delivered next day")
_SOON = re.compile(r"\b(?:\d+(?:[-–]\d+)?\s*(?:minutes?|mins?|hours?|hrs?|days?|business days|weeks?)|same[- ]day|"
                   r"next[- ]day|overnight|24/7|turnaround)\b", re.IGNORECASE)
# Which of the listings is first by a field ("which of those is cheapest?", "who has the most reviews?"): a
# superlative; a comparative ("anything cheaper?", "closer ones?") asks for other listings (conversation.py).
_FIRST: dict[Aspect, re.Pattern[str]] = {
    "top_rating": re.compile(r"\b(?:best|highest|top)[\s-]*(?:rated|ratings?|reviews?|reviewed)\b|"
                             r"\b(?:best|highest) (?:rating|ratings|reputation)\b|\bmost stars\b"),
    "top_reviews": re.compile(r"\bmost (?:reviews|reviewed|ratings|popular)\b"),
    "top_price": re.compile(r"\b(?:cheapest|least expensive|most affordable|lowest[\s-](?:price|cost|rate|fee)s?|"
                            r"best (?:price|deal)s?)\b"),
    "top_distance": re.compile(r"\b(?:closest|nearest)\b"),
}
# a question: "?", or a question word first, or after a clause ("that first company, how much do they charge")
_QUESTION = re.compile(r"\?|(?:^|[,;:-])\s*(?:(?:and|so|ok(?:ay)?|also|but|well|hmm+),?\s+)?"
                       r"(?:how|what|which|who|whos|where|are|is|do|does|can|could|would|will|any)\b")
# How a feature reads in a sentence (the rest: its name with spaces).
_FEATURE_WORDS = {"same_day": "same-day service", "night_ops": "night flights",
                  "emergency_callout": "emergency call-outs", "4k_video": "4K video", "fpv": "FPV flight",
                  "thermal_camera": "a thermal camera",
                  "live_stream": "live streaming", "rtk_gps": "RTK GPS", "multispectral": "a multispectral camera",
                  "spray_system": "a spray system", "indoor_flight": "indoor flight", "tethered": "tethered flight",
                  "payload_drop": "payload drops"}


# A listing pointed at by its place in the list shown ("the second one", "that last company", "number 2")
_ORDINAL = re.compile(r"\b(?:the|that|this)\s+(?:very\s+)?(first|second|third|last|1st|2nd|3rd)\b"
                      r"|\b(?:number|no|#)\s?([123])\b")
_TWO = re.compile(r"\b(first|top|last|bottom) (?:two|2)\b")
_POSITIONS = {"first": 0, "1st": 0, "1": 0, "second": 1, "2nd": 1, "2": 1, "third": 2, "3rd": 2, "3": 2, "last": -1}
# Words too common in operators' names to tell one from another ("the Drone Co. one")
_COMMON_NAME_WORDS = frozenset({"drone", "drones", "aerial", "aerials", "air", "services", "service", "solutions",
                                "works", "co", "inc", "llc", "group", "sky", "skies", "uas", "imaging", "media",
                                "company", "systems", "pro"})
# "tell me more about them", "how do I book the third one": the listing's own details, not one aspect
_DETAILS = re.compile(r"\b(?:tell me (?:more|about)|more (?:info|information|details)|details|what else|"
                      r"book|hire|contact|reach|schedule|get in touch|go with|differen(?:ce|ces|t) between|"
                      r"compare|pros and cons)\b")
_BOOK = re.compile(r"\b(?:book|hire|contact|reach|schedule|get in touch|go with)\b")
_MORE_INFO = re.compile(r"\b(?:tell me (?:more|about)|more (?:info|information|details)|details|what else|"
                        r"differen(?:ce|ces|t) between|compare|pros and cons)\b")


def feature_words(feature: str) -> str:
    """How a feature reads in a sentence ("night flights", "4K video")."""
    return _FEATURE_WORDS.get(feature, feature.replace("_", " "))


def referred(question: str, listings: Sequence[Any], earlier: Sequence[str] = ()) -> list[int]:
    """Which of the listings shown a turn points at, by position ("the second one", "the first or the
    second", "that last company"), by its city or its operator's name ("is the Pontiac one insured?"), or as
    the one a turn before asked for or pointed at: "which is cheapest?" then "is that one insured?", and then
    "how do I book it?"; [] when it points at none of them in particular.

    Args:
        question: the customer's newest turn.
        listings: the listings shown, in the order shown.
        earlier: the customer's turns before it, oldest first.
    """
    before = tuple(earlier)
    low = normalize(question)
    top = pointed_top(question)
    if not listings or not (refers(question) or _IT.search(low) or _THEM.search(low) or top):
        return []
    n = len(listings)
    picked = [_POSITIONS[m.group(1) or m.group(2)] % n for m in _ORDINAL.finditer(low)
              if -n <= _POSITIONS[m.group(1) or m.group(2)] < n]
    if (two := _TWO.search(low)) and n >= 2:  # "compare the first two", "the last 2"
        picked = [0, 1] if two.group(1) in ("first", "top") else [n - 2, n - 1]
    if not picked:
        for i, x in enumerate(listings):
            words = {w for w in normalize(x.operator).split() if len(w) > 2 and w not in _COMMON_NAME_WORDS}
            if re.search(rf"\b{re.escape(normalize(x.city))}\b", low) or any(
                    re.search(rf"\b{re.escape(w)}\b", low) for w in words):
                picked.append(i)
        if len(picked) == n and n > 1:  # every one of them: no one in particular
            picked = []
    if not picked and top:  # "book the closest one", "tell me more about the cheapest"
        picked = _tops(top, listings)[:1]
    if not picked and (_THAT.search(low) or _IT.search(low) or _THEM.search(low)) and before:
        tops = [a for a in asked(before[-1])[0] if a.startswith("top_")]
        if tops:
            picked = _tops(tops[0], listings)[:1]
        else:  # "is the Pontiac one insured?" then "how do I book it?": the one the turn before pointed at
            chained = referred(before[-1], listings, before[:-1])
            picked = chained if len(chained) == 1 else []
    return sorted(set(picked))


_THAT = re.compile(r"\bthat (?:one|company|outfit|operator|listing|guy|pilot)\b")
# "it" as one listing: the object of booking or asking about it, or the subject of a question ("is it insured?");
# "can they do it on a saturday?" (the job) is not
_IT = re.compile(r"\b(?:book|hire|contact|reach|schedule|call|email|message|choose|pick|go with|about)\s+it\b"
                 r"|^\W*(?:(?:and|so|but|ok|okay|great|cool|nice|thanks|alright|hmm|well)\W+)*"
                 r"(?:is|does|can|has|will|would)\s+it\b(?!\s+(?:be|possible|matter|take|rain)\b)")


# "ok how do I book them" after a turn that pointed at one of them: that one (the operator, said as "them")
_THEM = re.compile(r"\b(?:book|hire|contact|reach|schedule|call|go with)\s+(?:them|him|her)\b")


def _tops(aspect: Aspect, listings: Sequence[Any]) -> list[int]:
    """The positions of the listings first by one field (as `_first` names them)."""
    keys: dict[str, Any] = {
        "top_price": lambda x: x.price_from_usd,
        "top_rating": lambda x: (-x.rating, -x.review_count) if x.review_count else (1, 0),
        "top_reviews": lambda x: -x.review_count,
        "top_distance": lambda x: x.distance_miles if x.distance_miles is not None else float("inf"),
    }
    key = keys[aspect]
    best = min(key(x) for x in listings)
    return [i for i, x in enumerate(listings) if key(x) == best]


# one listing named by what it is first at, as a noun phrase: "the one w the best reviews", "the cheapest one"
_POINTED = re.compile(r"\bthe (?:one|company|guy|outfit|operator|listing|place|pilot)s?\s+"
                      r"(?:w|with|that has|who has|that got|thats got|having)\s+the\b"
                      r"|\bthe (?:[\w-]+ ){1,2}?(?:one|company|guy|guys|outfit|operator|listing|place|pilot)\b")
_WHICH = re.compile(r"\b(?:which|who|whos|whose)\b")
_PLAIN: dict[str, Aspect] = {"top_rating": "rating", "top_reviews": "rating", "top_price": "price",
                             "top_distance": "distance"}


def pointed_top(question: str) -> Aspect | None:
    """The superlative a turn points at one listing by, to hear more of it, book it or ask it something ("book
    the closest one", "tell me more about the cheapest", "the one w the best reviews, do they teach on
    weekends?"); None when it asks which one that is ("which is closest?": `asked`)."""
    low = normalize(question)
    top = next((name for name, pattern in _FIRST.items() if pattern.search(low)), None)
    if top is None or not (_DETAILS.search(low) or (_POINTED.search(low) and not _WHICH.search(low))):
        return None
    return top


def pointed(question: str, aspects: Sequence[Aspect]) -> tuple[Aspect, ...]:
    """The aspects a turn asks of the listing it points at by a superlative, without that superlative ("the one w
    the best reviews, do they teach on weekends?" asks the weekends, not the ratings)."""
    top = pointed_top(question)
    if top is None:
        return tuple(aspects)
    return tuple(a for a in aspects if not a.startswith("top_") and a != _PLAIN[top])


def miles(distance: float) -> str:
    """'under a mile', '1 mile', '12 miles'."""
    n = round(distance)
    return "under a mile" if n == 0 else f"{n} mile{'' if n == 1 else 's'}"


def wants_details(question: str) -> bool:
    """Whether a turn asks to hear more of the listings shown, or how to book one ("tell me more about the
    first one", "how do I hire them?")."""
    return _DETAILS.search(normalize(question)) is not None


def details_text(listings: Sequence[Any], question: str) -> str:
    """Each listing's own details, every value copied from it; how to book it when the turn asks."""
    out = []
    for name, x in zip(names(listings), listings, strict=True):
        rating = f"rated {x.rating:g} from {x.review_count} reviews" if x.review_count else "no reviews yet"
        insured = "insured" if x.insured else "does not say it is insured"
        certs = f"lists {_join(x.certifications)}" if x.certifications else "lists no certification"
        gear = [feature_words(f) for f in x.features]
        offers = f"; offers {_join(gear)}" if gear else ""
        out.append(f"{name} by {x.operator}, based in {x.city}: from {money(x.price_from_usd)} per {x.price_unit}, "
                   f"{rating}, {insured}, {certs}{offers}; it serves within {x.service_radius_miles:g} miles.")
    low = normalize(question)
    if _BOOK.search(low) and not _MORE_INFO.search(low):  # "ok how do I book them": how, not every detail again
        if len(listings) == 1:
            x = listings[0]
            return (f"To book {names(listings)[0]} by {x.operator}, open its listing on SkyMarket ({x.id}) and "
                    "request a quote or book there; the operator confirms the date and the price.")
        return ("To book, open the listing you choose on SkyMarket and request a quote or book there; the operator "
                "confirms the date and the price.")
    return " ".join(out)


def lacking(aspects: Sequence[Aspect], features: Sequence[str], listings: Sequence[Any],
            services: Sequence[str] = ()) -> bool:
    """Whether a listing lacks what a yes/no question over them asked (insurance, a feature, a service)."""
    return any(("insured" in aspects and not x.insured) or any(f not in x.features for f in features)
               or any(s not in x.services and not _mention(x.description, s) for s in services) for x in listings)


def is_question(turn: str) -> bool:
    """Whether a turn asks something: a question mark anywhere, or a question word opening a clause ("can i sit
    in on the lesson or is it just the kid")."""
    return _QUESTION.search(turn.lower().replace("’", "'")) is not None


def asked(question: str) -> tuple[tuple[Aspect, ...], tuple[str, ...]]:
    """What a turn asks about the listings: the aspects and, for "features", which ones.

    Only a question asks ("how much?", "are they insured", "do any work weekends?"): "I need it this weekend"
    states a need, which the search already ranks by.

    Args:
        question: the customer's newest turn.
    """
    text = question.lower().replace("’", "'")
    if not is_question(text):
        return (), ()
    aspects: list[Aspect] = [name for name, pattern in _FIRST.items() if pattern.search(text)]
    aspects += [name for name, pattern in _ASKS.items() if pattern.search(text)]
    if "pick" in aspects:  # "which one would you recommend, the best rated?": the pick says what each is first at
        aspects = [a for a in aspects if a in ("pick", "contact", "insured", "certifications")]
    features = tuple(name for name, pattern in FEATURE_PATTERNS.items() if pattern.search(text))
    if features:
        aspects.append("features")
    return tuple(aspects), features


def asked_services(question: str, categories: Sequence[str]) -> tuple[str, ...]:
    """The services of `categories` a question about the shown listings names ("do any of them check gutters?"
    -> gutter check; "can they do a video walkthrough?" -> property video tour), in the search's own vocabulary
    (a service's words, or a phrase that names it: retrieval/vocab/services.py); () when the turn does not ask
    about them (`conversation.about_shown`): "I also need the gutters checked" states a need and "Who can
    inspect my roof?" asks for listings; the search answers both.

    Args:
        question: the customer's newest turn.
        categories: the categories of the request (a service is named within its category).
    """
    if not categories or not (about_shown(question) or pointed_top(question)):  # "does the closest one do prints?"
        return ()
    return tuple(dict.fromkeys([*named_services(question, categories),
                                *hinted_services(normalize(question), categories)]))


def _join(parts: Sequence[str], sep: str = ", ") -> str:
    """'a, b and c' (with sep="; ": 'a; b; and c', for parts that hold commas themselves)."""
    if len(parts) == 1:
        return parts[0]
    return sep.join(parts[:-1]) + (";" if sep == "; " else "") + " and " + parts[-1]


def _split(listings: Sequence[Any], has: Any, verbs: tuple[str, str], none: tuple[str, str]) -> str:
    """"All 3 are insured" / "A and B are insured; C does not say so" / "None of the 3 says it is insured".

    Args:
        listings: the cited listings.
        has: whether a listing has it.
        verbs: what the ones that have it do, said of one and of several ("is insured", "are insured").
        none: when none has it, said of the only one and of "none of the N" ("does not say it is insured",
            "says it is insured").
    """
    named = list(zip(names(listings), listings, strict=True))
    yes = [name for name, x in named if has(x)]
    no = [name for name, x in named if not has(x)]
    if not no:
        return f"It {verbs[0]}." if len(yes) == 1 else f"{'Both' if len(yes) == 2 else f'All {len(yes)}'} {verbs[1]}."
    if not yes:
        return f"It {none[0]}." if len(no) == 1 else f"None of the {len(no)} {none[1]}."
    return (f"{_join(yes)} {verbs[0] if len(yes) == 1 else verbs[1]}; "
            f"{_join(no)} {'does' if len(no) == 1 else 'do'} not say so.")


def _first(aspect: Aspect, listings: Sequence[Any], place: str | None) -> str:
    """"Of these 3, X has the highest rating: 4.5 from 11 reviews." — the listings first by one field (ties
    named together), every value copied from them."""
    named = list(zip(names(listings), listings, strict=True))
    of = f"Of these {len(listings)}, " if len(listings) > 1 else ""
    if aspect == "top_distance":
        near = [(name, x) for name, x in named if x.distance_miles is not None]
        if not place or not near:
            return "Tell me the city or township of the job and I'll say which of them is closest."
        best = min(x.distance_miles for _, x in near)
        tops = [name for name, x in near if x.distance_miles == best]
        return f"{of}{_join(tops)} {'is' if len(tops) == 1 else 'are'} the closest to {place}, {miles(best)} away."
    if aspect == "top_price":
        best = min(x.price_from_usd for x in listings)
        cheapest = [(name, x) for name, x in named if x.price_from_usd == best]
        units = {x.price_unit for x in listings}
        note = " (they price by different units, so compare what each price covers)" if len(units) > 1 else ""
        return (f"{of}{_join([n for n, _ in cheapest])} {'has' if len(cheapest) == 1 else 'have'} the lowest "
                f"starting price: {money(best)} per {' or '.join(sorted({x.price_unit for _, x in cheapest}))}{note}.")
    rated = [(name, x) for name, x in named if x.review_count]
    if not rated:
        return "None of them has reviews yet." if len(listings) > 1 else "It has no reviews yet."
    if aspect == "top_reviews":
        most = max(x.review_count for _, x in rated)
        tops = [name for name, x in rated if x.review_count == most]
        return f"{of}{_join(tops)} {'has' if len(tops) == 1 else 'have'} the most reviews: {most}."
    best_rating = max(x.rating for _, x in rated)
    top = [(name, x) for name, x in rated if x.rating == best_rating]
    each = _join([f"{name} from {x.review_count} reviews" if len(top) > 1 else f"from {x.review_count} reviews"
                  for name, x in top])
    if len(top) == 1:
        return f"{of}{top[0][0]} has the highest rating: {best_rating:g} {each}."
    return f"{of}{_join([n for n, _ in top])} share the highest rating, {best_rating:g} ({each})."


def turnaround_text(listings: Sequence[Any]) -> str:
    """What each listing's own description says of how soon, quoted as theirs; '' when none says (the answer
    then says their listings do not say). A sentence with a price in it is not quoted (prices come from fields)."""
    said, silent = [], []
    for name, x in zip(names(listings), listings, strict=True):
        soon = next((t.strip() for t in split_sentences(x.description) if _SOON.search(t) and "$" not in t), None)
        if soon:
            said.append(f'{name} writes: "{soon}"')
        else:
            silent.append(name)
    if not said:
        return ""
    rest = f" {_join(silent)} {'does' if len(silent) == 1 else 'do'} not say; ask before you book." if silent else ""
    return " ".join(said) + rest


def pick_text(listings: Sequence[Any], place: str | None) -> str:
    """What each of the listings is first at (rating, distance, starting price), for "which one would you pick?":
    the choice stays the customer's, every value copied from the listings."""
    if len(listings) == 1:
        return f"{names(listings)[0]} is the only one shown; ask me for others if you'd like to compare."
    named = names(listings)
    firsts: dict[int, list[str]] = {}
    for aspect in ("top_rating", "top_distance", "top_price"):
        tops = _tops(aspect, listings)  # type: ignore[arg-type]
        if len(tops) != 1:
            continue  # a tie names no one
        x = listings[tops[0]]
        if aspect == "top_rating" and x.review_count:
            said = f"is the highest rated ({x.rating:g} from {x.review_count} reviews)"
        elif aspect == "top_distance" and place and x.distance_miles is not None:
            said = f"is the closest to {place} ({miles(x.distance_miles)})"
        elif aspect == "top_price":
            said = f"has the lowest starting price ({money(x.price_from_usd)} per {x.price_unit})"
        else:
            continue
        firsts.setdefault(tops[0], []).append(said)
    parts = [f"{named[i]} {_join(said)}" for i, said in firsts.items()]
    units = {x.price_unit for x in listings}
    note = " (they price by different units, so compare what each price covers)" if len(units) > 1 else ""
    lead = "It depends on what matters most to you. " if len(firsts) != 1 else ""  # one leads on all: no "depends"
    lead += "; ".join(parts) + f"{note}. " if parts else ""
    return lead + f"{named[0]} is the best match for what you asked."


def aspect_text(aspects: Sequence[Aspect], features: Sequence[str], listings: Sequence[Any],
                place: str | None, services: Sequence[str] = ()) -> str:
    """One sentence per aspect asked, every value copied from the listings ('' when nothing is asked).

    Args:
        aspects: from `asked()`.
        features: the features asked about (from `asked()`).
        listings: the cited listings (SearchResult: a listing with distance_miles).
        place: the searched place's name, when there is one.
        services: the services asked about (from `asked_services()`): which listings list each.
    """
    if not listings:
        return ""
    one = len(listings) == 1
    named = list(zip(names(listings), listings, strict=True))
    out: list[str] = []
    for aspect in aspects:
        if aspect.startswith("top_"):
            out.append(_first(aspect, listings, place))
        elif aspect == "price":
            each = [f"{money(x.price_from_usd)} per {x.price_unit} ({name})" for name, x in named]
            out.append(f"{'The price starts' if one else 'Prices start'} at {_join(each)}; the final price depends "
                       "on the job, so ask the operator for a quote.")
        elif aspect == "insured":
            out.append(_split(listings, lambda x: x.insured, ("is insured", "are insured"),
                              ("does not say it is insured", "says it is insured")))
        elif aspect == "rating":
            each = [f"{name} {x.rating:g} from {x.review_count} reviews" if x.review_count
                    else f"{name} has no reviews yet" for name, x in named]
            out.append(f"Ratings: {_join(each, '; ')}.")
        elif aspect == "distance":
            each = [f"{x.title} is based in {x.city}"  # the city tells apart two listings of one title
                    + (f", {miles(x.distance_miles)} from {place}" if place and x.distance_miles is not None else "")
                    for x in listings]
            out.append(_join(each, "; ") + ".")
        elif aspect == "certifications":
            each = [f"{name} lists {_join(x.certifications)}" if x.certifications
                    else f"{name} lists none" for name, x in named]
            out.append(_join(each, "; ") + ".")
        elif aspect == "pick":
            out.append(pick_text(listings, place))
        elif aspect == "turnaround":
            out.append(turnaround_text(listings))
        elif aspect == "contact":
            out.append(f"SkyMarket does not show operators' phone numbers or e-mail addresses: message "
                       f"{'the operator' if one else 'the operators'} or request a quote on "
                       f"{'the listing' if one else 'their listings'} on SkyMarket.")
        elif aspect == "features":
            for name in features:
                words = feature_words(name)
                out.append(_split(listings, lambda x, n=name: n in x.features, (f"lists {words}", f"list {words}"),
                                  (f"does not list {words}", f"lists {words}")))
    for service in services:
        out.append(_split(listings, lambda x, s=service: s in x.services, (f"lists {service}", f"list {service}"),
                          (f"does not list {service}", f"lists {service}")))
        for name, x in named:  # not among its services, but its own words name it ("We inspect roofs, chimneys")
            if service not in x.services and (said := _mention(x.description, service)):
                out.append(f'{name} writes: "{said}"')
    return " ".join(out)


# words of a service's name that say what is done, to anything: its other words say to what ("chimney")
_DOING = frozenset(stem(w) for w in ("inspection", "check", "assessment", "analysis", "detection", "response",
                                     "mapping", "maps", "survey", "photos", "photography", "video", "videography",
                                     "delivery", "services", "monitoring", "documentation", "filming"))


def _mention(description: str, service: str) -> str:
    """The first sentence of a listing's description that names what a service is done to ("chimney" of chimney
    inspection): all of those words, by stem; '' when none does or the name has no such word."""
    keys = {stem(w) for w in tokenize(service) if not w.isdigit()} - _DOING
    if not keys:
        return ""
    return next((t.strip() for t in split_sentences(description)
                 if keys <= {stem(w) for w in tokenize(t)} and "$" not in t), "")
