"""The features: what a listing's equipment or availability offers (`Listing.features`), the phrases a query
asks for each one with, and the services (or categories) that necessarily come with one.

A feature a query asks for raises the listings that have it (retrieval.ranking); it never filters.
Phrases are regex alternatives over the normalised, lower-case query, matched on word boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FEATURES", "Feature"]


@dataclass(frozen=True)
class Feature:
    """One feature: the phrases that ask for it, and what implies it.

    Args:
        phrases: regex alternatives that ask for it in a query.
        implied_by: services or categories whose listings necessarily have it (spraying needs a spray system).
    """

    phrases: tuple[str, ...]
    implied_by: tuple[str, ...] = ()


# before a time word: "last night", "the other night", "this past weekend" are past, not an ask
_NOT_PAST = r"(?<!last )(?<!other )(?<!past )(?<!previous )(?<!yesterday )"

FEATURES: dict[str, Feature] = {
    # a time already past says when something happened, not when to fly ("the fence blew down last night")
    "night_ops": Feature((_NOT_PAST + r"night(?:time|s)?", "after dark", "overnight", "at dusk",
                          _NOT_PAST + "evening", "tonight",
                          "after hours", "before (?:sunrise|dawn)", "after sunset", "(?:after|at) sundown",
                          # "once it gets dark", "after the sun goes down", "in the dark"
                          r"(?:gets|getting|get|is|its|goes) dark", "in the dark", "after the sun (?:goes|is) down")),
    "thermal_camera": Feature(
        (r"thermal", r"infra-?red", "heat loss", "flir", r"heat signatures?",
         # what only a heat picture shows: "see body heat", "pick up his heat", "find her by her heat"
         r"body heat",
         r"(?:see|detect|spot|pick up|find|locate|track)\w* (?:\w+ ){0,4}?heat\b(?! (?:loss|leaks?|escap\w*))",
         r"heat (?:vision|cameras?|cams?|sensing|seeking)", r"ir (?:cameras?|imaging|scans?|sensors?)"),
        implied_by=("thermal_imaging", "thermal training"),
    ),
    "lidar": Feature(("lidar", "laser scan(?:ning)?", "point clouds?", "bare earth",
                      # what only a laser sees: the ground under the trees
                      r"(?:through|under|below|beneath) (?:the |all the |those )?(?:trees|canopy|woods|brush|leaves|"
                      r"tree (?:cover|canopy)|foliage)")),
    "same_day": Feature(("same[- ]day", "today", "asap", "urgent(?:ly)?", "right away", "rush", "(?:on )?short notice",
                         "last[- ]minute", "tonight", "this (?:morning|afternoon|evening)", "right now",
                         "(?:by|before) (?:the )?end of (?:the )?(?:day|business)", "(?:as )?soon as possible",
                         "immediately", "within (?:the|an) hour",
                         # "within the next couple hours", "in the next few hours"
                         r"(?:within|in) the next (?:\w+ ){0,2}?hours?")),
    "rtk_gps": Feature(("rtk", "survey[- ]grade", "centimeter", r"survey[- ]accura(?:te|cy)",
                        r"(?:within|to) (?:an|one|1|a couple|two|2) (?:inch|inches|cm)",
                        r"(?:inch|cm)[- ](?:level|accurate|accuracy)")),
    "multispectral": Feature(("multispectral", "ndvi", "crop health"), implied_by=("ndvi crop health maps",)),
    "4k_video": Feature(("4k", r"5k(?= (?:video|camera|footage|resolution|quality|cinema))", "6k",  # a 5k is a race
                         r"ultra ?hd", "uhd", "8k", r"high[- ]res(?:olution)? (?:video|footage)",
                         # "a really high resolution camera for the video"
                         r"(?:hi|high|higher)[- ]?res(?:olution)? (?:\w+ ){0,3}?(?:video|footage|filming)",
                         r"ultra high def(?:inition)?")),
    "fpv": Feature(("fpv", "fly[- ]through", r"first[- ]person(?: view)?", "goggles", r"racing drones?")),
    "live_stream": Feature((r"live ?stream(?:ing|s|ed)?", "live video", "live feed", r"broadcast(?:s|ing|ed)?",
                            r"stream(?:ed|ing|s)? (?:(?:it|them|that|this|the \w+) )?(?:live|online)",
                            r"stream(?:ed|ing)? (?:\w+ ){0,3}?to (?:the |a |our |my )?(?:big )?"
                            r"(?:screens?|tvs?|youtube|facebook|website|web|internet|audience)",
                            r"(?:watch|see|view)(?:ing)? (?:it |them |everything )?live",
                            # "it should go out live on youtube", "live on our facebook page"
                            r"live (?:on|to|over) (?:the |our |my |a )?(?:youtube|facebook|instagram|twitch|internet|"
                            r"web|website|page|channel)", r"(?:go|goes|going|sent|send) out live")),
    "emergency_callout": Feature(("24/7", r"24 7", r"24 ?hours?", r"emergenc(?:y|ies)", "on call",
                                  "around the clock", r"any ?time(?: of (?:the )?(?:day|night))", "all hours")),
    "weekend_availability": Feature((_NOT_PAST + r"weekends?", _NOT_PAST + r"saturdays?", _NOT_PAST + r"sundays?")),
    "indoor_flight": Feature(("indoors?", "inside (?:of )?(?:a |the |my |our |their )?"
                              "(?:warehouse|building|tank|house|home|church|gym|arena|factory|barn|venue)",
                              # places a drone can only fly inside: "in the silo", "through the tunnel"
                              r"(?:in|inside|through) (?:a |the |our |my |their )?(?:grain )?(?:silos?|tunnels?|"
                              r"mines?|atrium|boiler|culverts?|sewers?|ductwork|crawl ?space)")),
    "tethered": Feature(("tether(?:ed)?", r"on (?:a|the) (?:cord|cable|leash|power line)",
                         r"(?:no|without|never) (?:battery|batteries) (?:swaps?|changes?)",
                         r"(?:cable|cord)[- ]powered")),
    "spray_system": Feature(
        (r"spray(?:ing|ed|er|ers)?", r"crop dust(?:ing|er|ers)?"),
        implied_by=("crop spraying", "orchard and vineyard spraying"),
    ),
    "payload_drop": Feature(("payload drop", r"winch(?:ed)?", r"lower(?:ed)? (?:a |the )?(?:package|parcel)s?",
                             # nowhere to set down: it comes down from the air ("it has to be dropped")
                             r"(?:has|have|needs?|had) to be dropped", r"air ?drop(?:s|ped)?",
                             # "drop a flotation ring to the swimmer", "release a line onto the ice" (but "drop off
                             # a parcel" is a delivery, "output dropped a lot" a fall)
                             r"(?:drop|release)(?:s|ping)? (?:a|an|some|the) (?!lot\b|bit\b|ton\b|line\b|pin\b)"
                             r"(?:\w+ ){1,3}?(?:to|onto|on|for|down to|into)\b",
                             r"(?:(?:no|not a|without a|isnt a) (?:good )?(?:place|spot|room)|nowhere) to "
                             r"(?:land|touch down|set (?:\w+ ){0,2}?down)")),
}
