"""What the query parser recognises: category synonyms, feature words and price phrases (regex, lower case).

Weights: a specific phrase ("roof check", "crop spraying") outweighs a loose word ("photos", "land").
"""

from __future__ import annotations

import re

__all__ = ["CATEGORY_PATTERNS", "FEATURE_PATTERNS", "INSURED", "PREPOSITIONS", "PRICE_PATTERNS", "RADIUS"]


def _p(*words: str) -> str:
    return r"\b(?:" + "|".join(words) + r")\b"


CATEGORY_PATTERNS: dict[str, list[tuple[re.Pattern[str], float]]] = {
    cat: [(re.compile(rx), w) for rx, w in pairs]
    for cat, pairs in {
        "delivery": [
            (_p(r"deliver(?:y|ies|ed|ing|s)?", "courier", r"drop[- ]?offs?", "same[- ]day drop"), 3.0),
            (_p(r"medicines?", r"prescriptions?", "pharmacy", r"parcels?", r"packages?", "shipping", "aed"), 2.0),
            (_p(r"(?:food|meal|takeout) (?:drop|run)s?", "to my boat", "island"), 2.0),
        ],
        "aerial_photography": [
            (_p(r"aerial (?:photo(?:s|graphy|graph|graphs)?|pictures?|shots?|stills?|images?)"), 3.0),
            (_p(r"drone (?:photo(?:s|graphy)?|pictures?|shots?)", r"photographers?", "panoramas?", "portraits?"), 2.5),
            (_p(r"photos?", r"pictures?", r"photography", "golf course", "landscape"), 1.0),
        ],
        "videography": [
            (_p(r"weddings?", r"videograph(?:er|ers|y)", "cinematic", "music video", r"film(?:ing|s|maker)?"), 3.0),
            (_p(r"videos?", r"footage", "commercial shoot", "promo", "highlight reel", "b-roll", "fpv"), 2.0),
        ],
        "real_estate": [
            (
                _p(
                    "real estate",
                    r"realtors?",
                    "mls",
                    r"listing (?:photos?|video)",
                    "zillow",
                    r"(?:house|home) for sale",
                ),
                3.5,
            ),
            (
                _p(
                    r"sell(?:ing)? (?:my|a|the) (?:house|home|property)",
                    r"property (?:photos?|video|tour)",
                    "open house",
                    "twilight",
                ),
                3.0,
            ),
        ],
        "inspection": [
            (
                _p(
                    r"roof(?:s|ing)?(?: (?:check|inspection|survey|look))?",
                    r"chimneys?",
                    r"gutters?",
                    r"shingles?",
                    r"inspect(?:ion|ions|ed|or)?",
                ),
                3.0,
            ),
            (
                _p(
                    "storm damage",
                    "hail",
                    "wind damage",
                    r"cell towers?",
                    r"bridges?",
                    r"facades?",
                    "insurance claim",
                    "solar panel",
                ),
                2.5,
            ),
        ],
        "thermal_imaging": [
            (_p(r"moisture (?:survey|scan|map(?:ping)?)s?", "wet insulation"), 3.5),
            (_p(r"thermal", r"infra-?red", "heat loss", r"thermograph(?:y|er)", r"hot ?spots?", "flir"), 3.0),
            (_p("insulation", "moisture", "energy audit", "leak detection", "heat signature"), 2.0),
        ],
        "mapping_surveying": [
            (
                _p(
                    r"survey(?:s|ing|or|ors)?",
                    r"mapp?(?:ing|s)?",
                    r"topo(?:graphic|graphy)?",
                    "orthomosaic",
                    r"contours?",
                    "gis",
                ),
                3.0,
            ),
            (
                _p(
                    r"acreage",
                    r"boundar(?:y|ies)",
                    r"lot lines?",
                    r"3d models?",
                    r"stockpiles?",
                    r"volumes?",
                    r"my land",
                    "parcel map",
                    r"lidar",
                ),
                2.0,
            ),
            (_p(r"land", "drainage"), 1.0),
        ],
        "agriculture": [
            (
                _p(
                    r"crops?",
                    r"spray(?:ing|s|er)?",
                    r"dust(?:ing|er)",
                    r"farms?",
                    r"farm(?:ing|er|ers)",
                    r"agricultur\w*",
                    "ndvi",
                    r"orchards?",
                    r"vineyards?",
                ),
                3.0,
            ),
            (
                _p(
                    r"fields?",
                    r"seed(?:ing)?",
                    "cover crops?",
                    "livestock",
                    "cattle",
                    "corn",
                    r"soybeans?",
                    "fungicide",
                    "herbicide",
                    r"acres?",
                ),
                2.0,
            ),
        ],
        "construction": [
            (
                _p(
                    "construction",
                    r"job ?sites?",
                    r"contractors?",
                    r"builders?",
                    r"(?:site|build) progress",
                    r"progress (?:photos?|monitoring|reports?)",
                    "as-built",
                    "earthwork",
                    "groundbreaking",
                ),
                3.0,
            ),
            (_p("time-?lapse", "site plan(?:ning)?", "excavation", "cut and fill", "new build"), 2.0),
        ],
        "public_safety": [
            (_p(r"(?:accident|crash) (?:scene|reconstruction)s?"), 3.5),
            (
                _p(
                    "search and rescue",
                    "sar",
                    r"missing (?:person|child|hiker|people|senior)s?",
                    "first responders?",
                    "police",
                    "fire department",
                    "fire scene",
                    "emergency response",
                ),
                3.5,
            ),
            (_p("rescue", r"missing", "security", "overwatch", r"accidents?", "flood", "hazmat", "crowd"), 2.0),
        ],
        "training": [
            (
                _p(
                    r"train(?:ing|er)?",
                    r"lessons?",
                    "learn to fly",
                    r"courses?",
                    r"class(?:es)?",
                    "flight school",
                    r"part 107 (?:test|exam|prep|course|certification)",
                    r"teach(?:ing)?",
                    r"instructors?",
                ),
                3.0,
            ),
            (_p("learn", "beginner", r"become a (?:drone )?pilot", "get certified", "certification"), 2.0),
        ],
    }.items()
}

FEATURE_PATTERNS: dict[str, re.Pattern[str]] = {
    feat: re.compile(rx)
    for feat, rx in {
        "night_ops": _p(r"night(?:time|s)?", "after dark", "overnight", "at dusk", "evening"),
        "thermal_camera": _p(r"thermal", r"infra-?red", "heat loss", "flir", "heat signature"),
        "lidar": _p("lidar", "laser scan(?:ning)?", "point clouds?"),
        "same_day": _p("same[- ]day", "today", "asap", "urgent(?:ly)?", "right away", "rush"),
        "rtk_gps": _p("rtk", "survey[- ]grade", "centimeter"),
        "multispectral": _p("multispectral", "ndvi", "crop health"),
        "4k_video": _p("4k", "5k", "6k"),
        "fpv": _p("fpv", "fly[- ]through"),
        "live_stream": _p(r"live ?stream(?:ing)?", "live video", "live feed"),
        "emergency_callout": _p("24/7", r"24 ?hours?", "emergency"),
        "weekend_availability": _p(r"weekends?", r"saturdays?", r"sundays?"),
        "indoor_flight": _p("indoors?", "inside (?:a |the )?(?:warehouse|building|tank)"),
        "tethered": _p("tether(?:ed)?"),
        "spray_system": _p(r"spray(?:ing)?", r"crop dust(?:ing)?"),
    }.items()
}

INSURED = re.compile(_p("insured", "insurance certificate", "liability insurance", "coi"))

# a number that is not a distance, a duration or a weight
_NUM = (
    r"\$?\s*(\d[\d,]*(?:\.\d+)?)(?![\d,]|\.\d)\s*(k\b)?(?!\s*(?:miles?|mi\b|km|minutes?|mins?|hours?|hrs?|acres?|lbs?|pounds?|"
    r"kg|feet|ft|stars?|%|percent))\s*(?:dollars|usd|bucks)?"
)
PRICE_PATTERNS: list[re.Pattern[str]] = [
    re.compile(
        r"\b(?:under|below|less than|cheaper than|max(?:imum)?|up to|no more than|at most|budget(?: of| is)?)"
        r"\s*(?:a\s+)?" + _NUM
    ),
    re.compile(r"<=?\s*" + _NUM),
    re.compile(r"\$\s*(\d[\d,]*(?:\.\d+)?)\s*(k)?\s*(?:or less|or under|or below|max|and under|tops)\b"),
]

RADIUS = re.compile(r"\b(?:within|in a|inside|under|less than)\s+(\d+(?:\.\d+)?)\s*[- ]?(?:miles?|mi)\b")

PREPOSITIONS = frozenset({"in", "near", "around", "at", "by", "from", "to", "close", "nearby", "within", "of"})
