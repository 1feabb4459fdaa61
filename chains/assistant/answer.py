"""What the assistant says without a model: answers built from the listings, and the cards of the text view.

Every figure here is copied from a listing; nothing is generated. These answers stand in whenever the
model's text is not usable (out of the area, nothing found, the model's claims removed, moderation) and the
cards follow every /chat answer, so the facts a customer reads never depend on the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chains.assistant.amounts import estimate_text
from chains.assistant.aspects import (
    asked,
    asked_services,
    aspect_text,
    details_text,
    feature_words,
    lacking,
    miles,
    money,
    names,
    pointed,
    pointed_top,
    referred,
    wants_details,
)
from chains.assistant.conversation import Request, keeps_shown
from chains.claims import split_sentences
from retrieval.text import tokenize

__all__ = ["ACKNOWLEDGED", "GENERAL", "GREETING", "SAME", "TRUST", "UNLISTED", "asked_text", "cards", "found_text",
           "general_text", "instead_text", "nearest_text", "none_found_text", "offered_text", "price_of",
           "request_text", "unanswered_text"]

GREETING = ("Hi! I can help you find drone services in Detroit Metro. Tell me what you need (a roof inspection, "
            "real estate photos, crop spraying...) and where, and I'll show you operators with their prices.")
GENERAL = ("I can help you find and compare drone service operators in Detroit Metro. Tell me what you need done "
           "and the city or township, and I'll show you matching listings with their prices and ratings.")
# "are the pilots on here vetted? how do I know they're legit": what a listing shows of its operator, no promise
TRUST = ("Each listing shows what its operator states: their certifications (such as the FAA Part 107 remote pilot "
         "certificate), whether they are insured, and their rating from customers' reviews. I can show you only "
         "insured operators, or the best rated first. Tell me what you need done and the city or township.")
_TRUST = re.compile(r"\b(?:vetted|vet|legit|legitimate|trust(?:worthy)?|scam|screened|background checks?|"
                    r"verified|verify|safe to (?:hire|book|use))\b", re.IGNORECASE)


def general_text(question: str) -> str:
    """The answer to a turn that searches nothing and is no small talk: how listings show their operators when
    it asks whether they can be trusted, else what the assistant does."""
    return TRUST if _TRUST.search(question) else GENERAL


# said before an answer that is, word for word, the one just given ("need it this week" changing nothing found)
SAME = "That doesn't change what I found:"
# small talk once the customer has asked for something ("thanks, that's all", "ok cool"): no greeting again
ACKNOWLEDGED = ("Glad to help. When you're ready, request a quote or book through SkyMarket on the listing, or tell "
                "me what else you need done.")
UNLISTED = ("Tell me what else you need done and the city or township, and I'll show you the operators that "
            "serve it with their prices.")
_CATEGORY_WORDS = {"mapping_surveying": "mapping and surveying"}  # how a category reads in a sentence
_ORDERED = {"price": ", cheapest first", "rating": ", best rated first", "distance": ", nearest first"}


def price_of(listing: Any) -> str:
    """'from $149 per project', exactly as the listing states it."""
    return f"from {money(listing.price_from_usd)} per {listing.price_unit}"


def _category_words(category: str) -> str:
    """How a category reads in a sentence ("mapping and surveying", "real estate")."""
    return _CATEGORY_WORDS.get(category, category.replace("_", " "))


def _what(request: Request, listings: Sequence[Any] = ()) -> str:
    """What the cited listings are (their categories, as the search found them: "aerial photography and real
    estate"), else what was searched for; with the insurance filter when it held (features only rank)."""
    it = request.interpreted
    kinds = [getattr(x, "category", None) for x in listings]  # a test's bare listing may have none
    if kinds and all(isinstance(k, str) for k in kinds):
        what = " and ".join(_category_words(str(k)) for k in dict.fromkeys(kinds))
    else:
        what = "drone service" if it is None or it.category is None else _category_words(it.category)
    if it is not None and it.insured:
        what = f"insured {what}"
    return what


def _where(request: Request, *, one: bool = False) -> str:
    it = request.interpreted
    return f" that serve{'s' if one else ''} {it.place.name}" if it is not None and it.place is not None else ""


def _cap(request: Request) -> str:
    it = request.interpreted
    return f" priced from {money(it.max_price)} or less" if it is not None and it.max_price is not None else ""


def found_text(request: Request, listings: Sequence[Any], question: str = "", *, searched: bool = False,
               earlier: Sequence[str] = ()) -> str:
    """The answer built from the cited listings: what was found, then what the newest turn asks about them
    (their prices, insurance, ratings...: `aspects`) or else the best match, and what to ask next.

    Args:
        request: the search request.
        listings: the cited listings, best first.
        question: the customer's newest turn.
        searched: other listings were searched for what none of these has, and none of them had it either.
        earlier: the customer's turns before the newest, oldest first ("that one" may point at what the turn
            before asked for).
    """
    it = request.interpreted
    detail = asked_text(request, listings, question, searched=searched, earlier=earlier)
    ask = "" if it is not None and it.place is not None else (
        " Tell me the city or township and I'll show the operators that serve it.")
    if request.about_shown:  # the customer has these listings: the answer is what they asked
        if not detail and request.missing:  # "can they also do a light show?": that no listing offers it is all
            return ""
        return (detail or unanswered_text(listings, question)) + ask
    top = listings[0]
    n = len(listings)
    sized = estimate_text(listings, request.sizes, it.max_price if it is not None else None)
    more = " more" if request.skip else ""  # past the listings shown before ("other options")
    head = (f"Here {'is' if n == 1 else 'are'} {n}{more} {_what(request, listings)} "
            f"{'listing' if n == 1 else 'listings'}{_where(request, one=n == 1)}{'' if sized else _cap(request)}"
            f"{_ORDERED.get(request.order, '')}.")  # with the job's size, the budget is said of the whole job
    rating = f", rated {top.rating:g} from {top.review_count} reviews" if top.review_count else ""
    where = "" if top.city in top.title else f" in {top.city}"  # "..., Sterling Heights by ... in Sterling Heights"
    away = getattr(top, "distance_miles", None)  # a search result's; a bare listing has none
    if (it is not None and it.place is not None and it.place.kind != "county" and away is not None
            and top.city != it.place.name):
        where += f", {miles(away)} from {it.place.name}"
    best = f" The top match is {top.title} by {top.operator}{where}, {price_of(top)}{rating}."
    if request.order == "price" and len({x.price_unit for x in listings}) > 1:  # $200 an hour before $399 a job
        best += " They price by different units, so compare what each price covers for your job."
    # the equipment and timing asked for rank the listings; which of them lists each is said, never promised
    asked_now = set(asked(question)[1])
    wanted = tuple(f for f in (it.features if it is not None else ()) if f not in asked_now)
    place = it.place.name if it is not None and it.place is not None else None
    gear = f" {aspect_text(('features',), wanted, listings, place)}" if wanted else ""
    said = f" {sized}" if sized and sized not in detail else ""  # a price question's answer has it already
    return head + said + gear + (f" {detail}" if detail else best) + ask


def asked_text(request: Request, listings: Sequence[Any], question: str, *, said: str = "",
               searched: bool = False, earlier: Sequence[str] = ()) -> str:
    """What the newest turn asks about the cited listings, answered from their fields (aspects.py); '' when it
    asks nothing of them. Prices the text `said` already states in full are not repeated.

    Args:
        request: the search request (its place, for distances).
        listings: the cited listings.
        question: the customer's newest turn.
        said: the text the answer already has (the model's, when it stands).
        searched: what they lack was searched for already, and the other listings lacked it too.
        earlier: the customer's turns before the newest, oldest first: "is that one insured?" after "which is
            cheapest?" is about the cheapest, and "how do I book it?" after that about the same one.
    """
    it = request.interpreted
    aspects, features = asked(question)
    aspects = pointed(question, aspects)  # "how do I contact the best rated one?": that one's, not the ratings
    # "is the Pontiac one insured?", "the first or the second?": only of listings the customer has seen (a city
    # named in a new request is where the job is), or by a superlative ("book the cheapest one")
    picked = referred(question, listings, earlier) if request.about_shown or pointed_top(question) else []
    chosen = [listings[i] for i in picked] or list(listings)
    plain = not aspects  # asks no value of them: "tell me more about the first one", "how do I book them?"
    if said and "price" in aspects and all(money(x.price_from_usd) in said for x in chosen):
        aspects = tuple(a for a in aspects if a != "price")
    services = asked_services(question, it.categories) if it is not None else ()
    if services and "certifications" in aspects and not _CREDENTIAL.search(question):
        aspects = tuple(a for a in aspects if a != "certifications")  # "help with the part 107 test?": the service
    # a county has no centre the customer is at: no distance from it ("12 miles from Wayne County")
    place = it.place.name if it is not None and it.place is not None and it.place.kind != "county" else None
    sized = ""  # "how much for 40 acres?": what each starting price comes to for the job, not the unit price alone
    if "price" in aspects and (sized := estimate_text(chosen, request.sizes, it.max_price if it else None)):
        units = dict(request.sizes)
        aspects = tuple(a for a in aspects if a != "price")
        others = [x for x in chosen if x.price_unit not in units]  # priced per project, delivery...: as listed
        sized += " " + (aspect_text(("price",), (), others, place) if others
                        else "The final price depends on the job, so ask the operator for a quote.")
    text = " ".join(t for t in (sized, aspect_text(aspects, features, chosen, place, services)) if t)
    if "certifications" in aspects:  # "a licensed surveyor?": a credential the listing's own words name
        text = " ".join([text, *own_words(chosen, question)])
    if text and len(chosen) == 1 < len(listings):
        text = f"About {names(listings)[picked[0]]}: {text[0].lower()}{text[1:]}" if text.startswith("It ") else text
    if text and lacking(aspects, features, chosen, services):  # a new search is the customer's call
        text += (" No other listing I found lists it either." if searched
                 else " If you need it, say so and I'll look for listings that have it.")
    if not text and plain and not services and (picked or (keeps_shown(question) and wants_details(question))):
        text = details_text(chosen, question)  # "tell me more about the first one", "how do I book them?"
    return text


# a credential asked by its own word ("licensed", "certified"), not a service that names one ("part 107 test prep")
_CREDENTIAL = re.compile(r"\b(?:licen[cs]\w*|certifi\w*|waivers?|qualifi\w*|accredit\w*)\b", re.IGNORECASE)
# words that tell no listing's text apart from another's: a question's other words are looked for in them
_GENERIC = frozenset(tokenize("drone drones fly flying flight aerial service company operator pilot they do does "
                              "also just like would could should how much many more about other ones guy guys ok "
                              "okay yes still really know sure thing things dont don't anyone someone somebody "
                              "anybody gonna wanna got get getting going one all out"))


def own_words(listings: Sequence[Any], question: str) -> list[str]:
    """'X writes: "..."' for each listing whose description has a sentence sharing two of the question's words
    (one word in common, "teach", is no answer to "do they teach teenagers?")."""
    words = {w for w in tokenize(question) if len(w) > 2 and not w.isdigit()} - _GENERIC
    quotes = []
    for name, x in zip(names(listings), listings, strict=True):
        shared, best = max(((len(words & set(tokenize(s))), s.strip()) for s in split_sentences(x.description)),
                           default=(0, ""))
        if shared >= 2 or (shared == len(words) == 1):
            quotes.append(f'{name} writes: "{best}"')
    return quotes


def unanswered_text(listings: Sequence[Any], question: str) -> str:
    """The answer to a question about the listings shown that none of their fields answers ("he's 14, is that
    ok?"): the sentence of each one's own description that shares the question's words, quoted as theirs, or
    that their listings do not say; and to ask the operator through the listing, never a guess."""
    quotes = own_words(listings, question)
    whom = "the operator" if len(listings) == 1 else "the operators"
    if quotes:
        return (f"Their listings do not answer that directly. {' '.join(quotes)} Ask {whom} to be sure (message them "
                "or request a quote on the listing on SkyMarket).")
    return (f"{'Its listing does' if len(listings) == 1 else 'Their listings do'} not say, so ask {whom} before you "
            "book (message them or request a quote on the listing on SkyMarket).")


def instead_text(request: Request, shown: Sequence[Any], question: str) -> str:
    """What none of the listings shown has, said before other listings are shown instead ("None of the 3
    listings shown before lists weekend availability, so here are other listings instead, ..."): no name of
    theirs, since they are no longer cited."""
    it = request.interpreted
    aspects, features = asked(question)
    services = asked_services(question, it.categories) if it is not None else ()
    wanted = [*(["insurance"] if "insured" in aspects else []), *(feature_words(f) for f in features), *services]
    what = wanted[0] if len(wanted) == 1 else "all of " + " and ".join(wanted)
    return (f"None of the {len(shown)} listings shown before lists {what}, so here are other listings instead, "
            "not the ones shown before.")


def nearest_text(request: Request, listings: Sequence[Any]) -> str:
    """The answer when no listing serves the place but some fit the rest of the request: the nearest, each with
    its distance and its own service radius, so the customer knows to ask whether they would travel."""
    it = request.interpreted
    assert it is not None and it.place is not None
    each = [f"{x.title}{'' if x.city in x.title else f' in {x.city}'}, {miles(x.distance_miles)} away "
            f"(it serves within {x.service_radius_miles:g} miles), {price_of(x)}" for x in listings]
    return (f"No {_what(request)} listing{_cap(request)} lists {it.place.name} in its service area. The nearest "
            f"that fit the rest of your request: {'; '.join(each)}. Ask them whether they would make the trip.")


def none_found_text(request: Request) -> str:
    """The answer when the search found nothing that fits every filter."""
    if request.skip:  # asked past the listings shown: there are no others
        return (f"I found no other {_what(request)} listing{_where(request, one=True)}{_cap(request)} than those "
                "shown. Try a nearby city, a wider area or a higher price.")
    return (f"I found no {_what(request)} listing{_where(request, one=True)}{_cap(request)}. "
            "Try a nearby city, a wider area or a higher price.")


def cards(listings: Sequence[Any]) -> str:
    """The cited listings as short text cards: exact title, operator, city, price, rating and id."""
    lines = []
    for i, x in enumerate(listings, 1):
        rating = f"rated {x.rating:g} ({x.review_count} reviews)" if x.review_count else "no reviews yet"
        lines.append(f"{i}. {x.title} ({x.operator}, {x.city}): {price_of(x)}, {rating}. Listing {x.id}")
    return "\n".join(lines)


def request_text(request: Request) -> str:
    """The request in words, for the model ("inspection near Troy, priced from $300 or less")."""
    it = request.interpreted
    if it is None:
        return "nothing specific yet"
    parts = [it.text]
    if it.place is not None:
        parts.append(f"near {it.place.name}")
    if it.outside_place is not None:
        parts.append(f"in {it.outside_place.name}, outside the service area")
    if it.max_price is not None:
        parts.append(f"priced from {money(it.max_price)} or less")
    if it.features:
        parts.append("with " + ", ".join(f.replace("_", " ") for f in it.features))
    if it.insured:
        parts.append("insured")
    return " ".join(parts) + _ORDERED.get(request.order, "")


def offered_text(place: str, listings: Sequence[Any]) -> str:
    """What the operators that serve a place offer, by category, from the listings the search found there."""
    counts: dict[str, int] = {}
    for x in listings:
        counts[x.category] = counts.get(x.category, 0) + 1
    if not counts:
        return f"I found no listing that serves {place} yet. Try a nearby city or township."
    kinds = [_category_words(c) for c in sorted(counts, key=lambda c: (-counts[c], c))]
    listed = ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else kinds[0]
    return (f"Operators that serve {place} offer {listed}. Tell me what you need done and I'll show you the "
            "best matches with their prices.")
