"""Filter phrases: the words in a query that set a search filter ("under $300", "within 10 miles", "insured").

The parser tries them in this order, first, and blanks each phrase that matched before it looks for places,
categories and features: "within 24 hours" can set a filter without also asking for 24-hour call-outs.
For each filter the first phrase that matches wins. A phrase reads its value from the named group `n` (a
number; `k` after it means thousands) unless it has a fixed `value`. A value the filter model refuses (a
radius of 500 miles) is dropped, and its words are still not searched.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CREDENTIALS", "FILTER_PHRASES", "NEGATIONS", "OPERATOR_CREDENTIALS", "PREPOSITIONS", "SCENERY_WHERE",
           "SCENERY_WHO", "FilterPhrase"]


@dataclass(frozen=True)
class FilterPhrase:
    """One way of saying a filter.

    Args:
        filter: the `retrieval.filters.SearchFilters` field it sets.
        pattern: a regex over the normalised, lower-case query; `(?P<n>...)` captures the number.
        value: the filter's value when the phrase says it without a number (`insured` -> True).
    """

    filter: str
    pattern: str
    value: float | bool | None = None


# a number that is not a distance, a duration or a weight; `k` = thousands; the price's unit after it ("80 per
# acre", "$60 an hour") goes with it: it asks for no service
_NUM = (
    r"\$?\s*(?P<n>\d[\d,]*(?:\.\d+)?)(?![\d,]|\.\d)\s*(?P<k>k\b)?(?!\s*(?:miles?|mi\b|km|minutes?|mins?|hours?|hrs?|"
    r"acres?|lbs?|pounds?|kg|feet|ft|stars?|%|percent|degrees?|deg\b|°))\s*(?:dollars|usd|bucks)?"
    r"(?:\s*(?:per|a|an|each|/)\s*(?:acre|hour|hr|session|delivery|drop|project|job|visit|flight|lesson|class)\b)?"
)

FILTER_PHRASES: tuple[FilterPhrase, ...] = (
    FilterPhrase(
        "max_price",
        r"\b(?:under|undr|below|less than|cheaper than|max(?:imum)?|up to|no more than|at most|"
        # a cap raised: "i can stretch to 800", "we could go up to 1200", "bump it to 500"
        r"(?:stretch|go|push|bump|raise|up)(?: it| that| the budget| my budget)?(?: up)? to|"
        # "budget of 300", "our budget's around 150" (normalised: "budgets"), "the budget would be 2k"
        r"budget(?:s| of| is| was| would be| will be)?[:,]?|"
        # "nothing over 150", "none above $300", "not more than 80": a cap said as what is out
        r"(?:nothing|none|nobody|no one|not|anything but) (?:over|above|more than|higher than|pricier than)|"
        # "I don't want to spend more than 150", "can't pay over $80": a cap said as a refusal
        r"(?:dont|do not|wont|will not|cant|cannot|shouldnt|should not|not)\s+(?:\w+\s+){0,2}?(?:spend|pay|go)\s+"
        r"(?:more than|over|above)|"
        # "we can only afford 200", "can't afford a lot, maybe 300?": what they can afford (two digits at least:
        # "afford 2 visits" is no price)
        r"afford(?:\s+(?:a lot|much|too much|more|a ton)(?:\s+than)?)?[\s,;-]*(?:(?:maybe|so|just|probably|only)\s+)?"
        r"(?=(?:(?:a|like|about|around|roughly)\s+)?\$?\s*\d{2}))"
        r"\s*(?:(?:a|like|about|around|roughly)\s+)?" + _NUM,
    ),
    FilterPhrase("max_price", r"<=?\s*" + _NUM),
    FilterPhrase(
        "max_price",
        # what they will spend: "looking to spend about 500", "i got about 900 to spend", "we have 2k to work with"
        r"\bspend(?:ing)?\s+(?:(?:about|around|like|maybe|up to|roughly|only|just)\s+)?" + _NUM,
    ),
    FilterPhrase(
        "max_price",
        r"(?:\$\s*|\b)(?P<n>\d[\d,]*)(?![\d,])\s*(?P<k>k\b)?\s*(?:dollars|usd|bucks)?\s+(?:to spend|to work with)\b",
    ),
    FilterPhrase(
        "max_price",
        # a price that is fine, and no more: "around 30 a drop is fine, any more and ...", "300 ok but nothing more"
        r"(?:\$\s*|\b)(?P<n>\d[\d,]*(?:\.\d+)?)(?![\d,])\s*(?P<k>k\b)?\s*(?:dollars|usd|bucks)?"
        r"(?:\s*(?:per|a|an|each|/)\s*(?:acre|hour|hr|session|delivery|drop|project|job|visit|flight|lesson|class)\b)?"
        r"[^.?!\d]{0,30}\b(?:any ?more|anything (?:more|over|above|higher)|nothing (?:more|over|above|higher)|"
        r"more than that|over that|above that)\b",
    ),
    FilterPhrase(
        "max_price",
        # "$250 or less", "400 max", "2k tops": the dollar sign may be left out
        r"(?:\$\s*|\b)(?P<n>\d[\d,]*(?:\.\d+)?)\s*(?P<k>k)?\s*(?:dollars|usd|bucks)?\s*"
        r"(?:(?:a|an|per|each|the)\s+\w+\s+)?(?:or less|or under|or below|max|and under|tops|at most)\b",
    ),
    FilterPhrase(
        "radius_miles", r"\b(?:within|in a|inside|under|less than)\s+(?P<n>\d+(?:\.\d+)?)\s*[- ]?(?:miles?|mi)\b"
    ),
    FilterPhrase(
        "insured",
        r"\b(?:insured|bonded|insurance certificate|liability insurance|coi|insurance coverage|liability coverage|"
        # "make sure they carry liability", "someone with general liability"
        r"(?:have|has|carry|carries|with|got) (?:general )?liability(?! (?:waiver|form|release))|"
        # "a license and insurance", "certified plus insurance"
        r"(?:and|&|plus) (?:liability )?insurance(?! (?:claim|adjuster|company|agent|guy))|"
        # "do they carry insurance?" (but "help with an insurance claim" asks for no insured operator)
        r"(?:have|has|carry|carries|with|got|any|proof of) (?:general |liability )?insurance"
        r"(?! (?:claim|adjuster|company|agent|guy))|"
        # "insurance is a must", "insurance required"
        r"insurance (?:is )?(?:a must|required|mandatory|needed|necessary|non-?negotiable))\b",
        True,
    ),
)

# the operator's credentials said with "commercial" ("licensed for commercial work", "certified to fly
# commercially"): every listing flies under Part 107, and the word asks for no commercial video or property.
# Its words are not searched (they still count for a category: "get my commercial license" is training)
CREDENTIALS = (
    r"\b(?:licen[cs]ed|certified|certificated|legal|legit|approved|qualified|cleared|allowed)"
    r"(?: (?:and insured|to|for|fly|do|operate|as|a|be|flying|doing))*(?: \w+)?? commercial(?:ly)?"
    r"(?: (?:drone|uav))?(?: (?:work|use|flights?|flying|jobs?|operations?|purposes?|pilots?|operators?))?\b"
    r"|\bcommercial(?:ly)? (?:drone |pilot |uav )?(?:licen[cs](?:ed?|es)|certifi\w+|waivers?)\b"
)

_CRED = r"(?:licen[cs](?:e|es|ed)|certifi(?:ed|cation|cations)|certificates?|certificated|waivers?)"
# a credential asked of the operator ("they need their part 107 license", "must hold an FAA certificate", "a
# part 107 certified pilot"): no training asked for; read after the filters and blanked like them (neither
# searched nor counted). Said of oneself it is ("get my part 107 license", "part 107 certification course").
OPERATOR_CREDENTIALS = (
    r"\b(?:they|them|their|theyre|pilots?|operators?|compan(?:y|ies)|someone|somebody|anyone|anybody|whoever|he|"
    r"she|his|her|you|your|guys?|vendors?|contractors?)\b"
    r"(?:\s+(?!(?:me|my|i|im|myself|us|our|we|get|getting|earn|pass|become|study|prep|take)\b)[a-z]+){0,5}?\s+"
    r"(?:(?:faa\s+)?part\s+107\s+|faa\s+|commercial\s+|drone\s+|pilots?\s+)*" + _CRED + r"\b"
    # "must hold a part 107 certificate"
    r"|\b(?:must|should|has to|have to|needs? to|required to)\s+(?:hold|have|carry|possess|show)\s+"
    r"(?:(?:a|an|the|their|his|her|valid|current)\s+)*(?:(?:faa\s+)?part\s+107\s+|faa\s+|commercial\s+|drone\s+|"
    r"pilots?\s+)*" + _CRED + r"\b"
    # "a part 107 certified pilot", "FAA licensed only" (but "become part 107 certified" is training)
    r"|(?<!get )(?<!getting )(?<!become )(?<!becoming )(?<!be )(?<!earn )(?<!my )(?<!our )"
    r"\b(?:(?:faa\s+)?part\s+107|faa)\s+(?:certified|licensed|certificated|compliant|approved)\b"
)

# words just before a category or feature phrase that turn it down ("not photos, video", "never mind the
# wedding", "we don't need a realtor"): the phrase is neither searched nor counted; nor is what the customer
# would rather not do themselves ("without riding the fence line": the chore the drone spares, not a service)
NEGATIONS = (
    r"(?:\bnot|\bno|\bnever ?mind(?: about)?|\bforget(?: about)?|\binstead of|\brather than|"
    r"\b(?:dont|do not|no longer) (?:need|want)|\bskip|\bscratch|\bditch|\bcancel|"
    r"\bwithout(?:\s+(?:me|us|anyone|somebody|someone)?\s*(?:having to\s+)?[a-z]+ing)?)"
    r"(?:\s+(?:the|a|an|any|my|our|those|that|this|at|on|more))?\s*$"
)

# words before a service word that make it scenery, not the ask (it weighs a third): where ("everyone in the
# field", "a barn on our farm") and who the customer is ("we run a strawberry farm", "he's been farming it")
SCENERY_WHERE = (
    # ("a look at the chimney" names what is looked at, not where)
    # ("at least film it" says how much, not where)
    r"(?:\b(?:on|(?<!look )(?<!looks )(?<!looking )(?<!glance )(?<!peek )at(?! (?:least|most|all|once|first|last)\b)|"
    r"in|near|by|outside(?: of)?|behind|beside|"
    # ("keep watch over the crowd" watches over it: the crowd is the job)
    r"next to|across(?: from)?|(?<!watch )(?<!watching )(?<!watches )(?<!eye )over|inside|around|along|under|"
    r"underneath|beneath)\s+"
    r"(?:(?:a|an|the|our|my|his|her|their|your|this|that)\s+)?"
    r"|\bof\s+(?:our|my|his|her|their)\s+"  # and what is pictured: "shots of our farm"
    # and when: "done before the crops come up", "after the wedding"
    r"|\b(?:before|after|until|till|by the time)\s+(?:the|our|my|his|her|their)\s+"
    r"|\bfor\s+(?:our|my|his|her|their|the)\s+"  # and for whom: "training for our fire department"
    r"|\bto\s+(?:our|my|his|her|their)\s+"  # and where to: "parts out to our job site"
    # and where something is carried: "a fitting sent out to a job site", "flown over to the farm"
    r"|\b(?:sent|send|sending|brought|bring|bringing|flown|fly|carried|carry|shipped|taken|take|run|delivered)"
    r"(?:\s+(?:out|over|up|down|back))?\s+to\s+(?:a|an|the|this|that)\s+)(?:[a-z]+\s+)?$"
)
SCENERY_WHO = (
    r"\b(?:i|we|he|she|they|my|our|his|her|their)\b(?:\s+[a-z]+){0,3}?\s+"
    r"(?:run|runs|own|owns|manage|manages|operate|operates|work (?:for|at)|works (?:for|at)|have|has|had|been|am|"
    r"im|are|is|hes|shes|were)\b"
    # said contracted: "I'm a realtor", "we're a construction company" (normalised: "im", "were a")
    r"|\b(?:im|were|theyre|hes|shes) (?=(?:a|an|the|your|with|from|in charge)\b)"
)

# words before a place name that go with it ("near Troy", "in Ann Arbor"): not searched either
PREPOSITIONS = frozenset({"in", "near", "around", "at", "by", "from", "to", "close", "nearby", "within", "of"})
