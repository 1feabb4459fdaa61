"""Services said by their situation: what a customer describes instead of the service's name ("the dog ran
off" is a search for missing pets, "how many cubic yards in that pile" a volume calculation).

A listing names its services in its own words (`SERVICES`), which the lexical and vector search match; a
customer often says only the problem. When one of these phrases is in a query and the service's category is
among those the query points to, the parser adds the service's own name to the words searched, so the
listings that offer it rank first. It filters nothing and names no category by itself.

Phrases are regex alternatives over the normalised, lower-case query, matched on word boundaries.
"""

from __future__ import annotations

from retrieval.vocab.categories import CRASH as _CRASH

__all__ = ["SERVICE_HINTS"]

_ANIMAL = r"(?:pets?|dogs?|cats?|pup|pupp(?:y|ies)|kitt(?:y|ies|en|ens)|horses?)"
_EVENT = (r"(?:picnic|party|parties|reunion|gala|fundraiser|festival|concert|graduation|ceremony|celebration|"
          r"quincea\w*|mitzvah|birthday|anniversary|homecoming|prom|opening|ribbon cutting)s?")
_CROP = r"(?:corn|soybeans?|soy|beans|wheat|oats|barley|hay|alfalfa|potatoes|sugar ?beets?|fields?)"
_FRUIT = r"(?:apples?|cherr(?:y|ies)|grapes?|peach(?:es)?|blueberr(?:y|ies)|fruit trees?|vines?)"

SERVICE_HINTS: dict[str, tuple[str, ...]] = {
    # thermal imaging
    "search for missing pets": (rf"(?:lost|missing|runaway|escaped) {_ANIMAL}",
                                rf"{_ANIMAL},? (?:\w+ ){{0,2}}?(?:ran|run|runs|got|went|slipped|wandered|bolted|"
                                r"escaped|took) (?:off|away|out|loose)",
                                rf"(?:cant|cannot|can not|couldnt) find (?:my|our|the|his|her|their) {_ANIMAL}",
                                rf"(?:find|finding|look(?:ing)? for|search(?:ing)? for|track(?:ing)? down) "
                                rf"(?:my|our|his|her|their) (?:\w+ )?{_ANIMAL}\b"),
    "pipe and leak detection": (r"(?:sewer|water|gas) (?:lines?|mains?|pipes?)",
                                r"(?:buried|underground) (?:pipes?|lines?)",
                                r"(?:pipes?|lines?|mains?|plumbing|slab) (?:\w+ ){0,3}?"
                                r"(?:is |are |must be |might be )?leak(?:s|ing|y)?",
                                r"leak(?:s|ing|y)? (?:pipes?|lines?|mains?)", r"water bills?",
                                r"wet spots? (?:in|on) the (?:yard|lawn|floor|slab|basement)"),
    "building heat loss": (r"(?:losing|lose|loses|lost|wasting) (?:\w+ )?heat", r"ice dams?",
                           r"draft(?:s|y)", r"cold (?:spots?|rooms?|floors?|walls?|upstairs)",
                           r"(?:heating|energy|gas|utility) bills?", r"(?:heat|warm air) (?:is )?(?:leak|escap)\w*",
                           r"insulation", r"energy audits?"),
    "flat roof moisture survey": (r"flat roofs?", r"(?:roof|ceiling) (?:is )?leak(?:s|ing|y)?",
                                  r"leak(?:s|ing|y)? (?:in the )?roofs?", r"wet insulation"),
    "electrical hot spots": (r"(?:electrical|breaker|service|fuse) (?:panels?|box(?:es)?|rooms?|gear)", r"switchgear",
                             r"transformers?", r"breakers?", r"(?:overheating|hot) (?:wires?|wiring|connections?)"),
    "solar farm thermography": (r"solar (?:\w+ )?(?:output|production|yield)",
                                r"(?:dead|bad|failed|failing|faulty|broken) (?:solar )?(?:panels?|cells?|modules?)"),
    "livestock and wildlife counts": (r"counts?", r"counting", r"census", r"(?:count|counting|how many) (?:\w+ ){0,2}?"
                                      r"(?:deer|geese|animals|head|cattle|cows)",
                                      r"wildlife", r"deer",
                                      # the animals a heat picture finds, asked of thermal imaging ("a heat camera
                                      # over my cows"): only read when the query points to thermal imaging
                                      r"cattle", r"cows?", r"herds?", r"livestock"),
    # inspection
    "solar panel inspection": (r"solar (?:\w+ )?(?:output|production|yield)", r"solar (?:arrays?|modules?|systems?)",
                               r"(?:dead|bad|failed|failing|faulty|broken) (?:solar )?(?:panels?|cells?|modules?)"),
    "storm damage assessment": (r"trees? (?:\w+ )?(?:fell|fall|fallen|came down|down on)", r"hail\w*",
                                r"wind damage", r"\w*storms?", r"blew (?:off|down|away)", r"tornado"),
    "cell tower inspection": (r"antennas?", r"(?:radio|comms?|communications?|telecom|phone) towers?", r"monopoles?"),
    "roof inspection": (r"shingles?", r"slates?", r"flashing", r"roofers?", r"roof(?:s|ing)"),
    "facade inspection": (r"spall(?:ing|ed)?", r"(?:bricks?|brickwork|masonry|stone|cladding|exterior walls?)"),
    # mapping and construction
    "volume calculations": (r"cubic (?:yards?|feet|meters)", r"(?:stock)?piles?", r"tonnage",
                            r"how much (?:dirt|gravel|sand|mulch|soil|stone|salt|material|fill)"),
    "earthwork volumes": (r"cubic (?:yards?|feet|meters)", r"(?:stock)?piles?", r"cut and fill",
                          r"how much (?:dirt|gravel|sand|soil|fill) (?:\w+ ){0,3}?(?:moved|hauled|removed)"),
    "orthomosaic maps": (r"stitched(?: together)?", r"one big (?:map|photo|picture|image)", r"(?:satellite|google) "
                         r"(?:view|style|image)"),
    "topographic mapping": (r"grad(?:e|es|ing)", r"elevations?", r"contours?", r"slopes?", r"topo", r"cut and fill"),
    "property boundary mapping": (r"property (?:corners?|pins?|lines?|markers?|stakes?)",
                                  r"fence ?(?:lines?|disputes?)",
                                  r"encroach\w*", r"where (?:my|our|the) (?:property|lot|land) (?:ends|stops)"),
    "drainage analysis": (r"(?:water|rain|runoff) (?:\w+ )?(?:flows?|runs? (?:across|down|off|into|through|toward))",
                          r"runoff", r"wetlands?", r"basement (?:keeps )?floods?",
                          r"where (?:the |all the |our |my )?(?:water|rain(?:water)?|runoff) "
                          r"(?:goes|drains|runs|flows|ends up)",
                          r"(?:ponds?|creeks?|ditch(?:es)?|drains?|culverts?) (?:keeps? |is |are )?"
                          r"overflow(?:s|ing|ed)?",
                          r"(?:water|rain) (?:\w+ )?(?:pools?|pooling|puddles?|puddling|stands?|sits?|collects?)",
                          r"standing water",
                          r"(?:yard|lot|field) floods?"),
    "time-lapse": (r"timelapse", r"time lapse"),
    "progress monitoring": (r"progress",
                            r"(?:how|where) (?:the build|it|things|the project|the job) (?:is|are) (?:coming|going)",
                            r"(?:monthly|weekly|biweekly|regular) (?:updates?|flyovers?|fly-?overs?|visits?)"),
    "site planning": (r"where to (?:put|build|place|locate|site)", r"layout", r"before (?:we|i|they) build"),
    "as-built documentation": (r"as[- ]?built", r"document(?:ing)? (?:the )?(?:\w+ )?(?:condition|finished|completed)"),
    "safety audits": (r"osha", r"(?:fall|site|safety) hazards?", r"safety (?:issues?|checks?|walks?|reviews?)"),
    # agriculture
    "livestock monitoring": (r"cattle", r"cows?", r"herds?", r"head of", r"calves", r"livestock", r"horses?",
                             r"pastures?", r"sheep", r"goats?"),
    "ndvi crop health maps": (r"(?:crops?|plants?|trees?|vines?|fields?|corn|beans) (?:are |is |look |looks )?"
                              r"(?:healthy|unhealthy|sick|dying|struggling|stressed)",
                              r"yellow(?:ing)? (?:patches|spots|rows)", r"patches (?:are |of )?yellow\w*",
                              r"nitrogen", r"(?:crop|plant) (?:health|stress)",
                              r"(?:health|vigou?r) (?:maps?|mapping|scans?|surveys?|imagery)"),
    "crop spraying": (rf"{_CROP} (?:\w+ ){{0,2}}?spray\w*", rf"spray\w* (?:\w+ ){{0,2}}?{_CROP}"),
    "orchard and vineyard spraying": (rf"{_FRUIT} (?:\w+ ){{0,2}}?spray\w*", rf"spray\w* (?:\w+ ){{0,2}}?{_FRUIT}"),
    "drainage tile mapping": (r"tiles?(?: lines?| drains?| runs?)?", r"(?:field|farm) drains?"),
    "crop scouting": (r"bugs", r"pests?", r"insects?", r"beetles?", r"worms", r"weeds?", r"blight", r"fungus",
                      r"(?:walk|check|look over|go over) (?:the |my |our )?(?:fields?|rows|crops?)", r"scout\w*"),
    "cover crop seeding": (r"(?:spread|broadcast|sow|drop|fly)\w* (?:\w+ )?seeds?", r"seeds? (?:spread|broadcast|sown)",
                           r"re-?seed\w*", r"seeding"),
    # training
    "part 107 test prep": (r"part 107", r"faa (?:test|exam|license|licence|certificate)", r"knowledge test"),
    "fpv lessons": (r"goggles", r"(?:drone )?racing", r"freestyle"),
    "mapping software training": (r"software", r"(?:do|make|process) (?:my|our|his|her|their) own (?:mapping|maps)"),
    "corporate team training": (r"(?:our|the|my|whole) (?:team|staff|crew|employees|deputies|officers|department)",
                                r"(?:employees|staff|deputies|officers|workers|teachers|volunteers|firefighters)"),
    # videography
    "event videography": (_EVENT,),
    "commercial video": (r"promo(?:tional)?", r"ads?", r"advert\w*", r"commercials?", r"brand(?:ing)?", r"marketing",
                         r"for (?:our|my|the) (?:business|company|website|shop|store|restaurant|brewery|bakery)"),
    "sports filming": (r"(?:fun|color|charity) runs?", r"races?", r"\d+k (?:run|race|walk)", r"marathons?",
                       r"tournaments?", r"games?",
                       r"regattas?", r"football", r"soccer", r"baseball", r"lacrosse", r"hockey"),
    # delivery
    "medical supplies": (r"lab samples?", r"specimens?", r"blood", r"(?:clinic|hospital|lab)s? (?:to|and) (?:\w+ )?"
                         r"(?:clinic|hospital|lab)s?", r"defibrillators?", r"aeds?"),
    "prescription delivery": (r"insulin", r"meds", r"medications?", r"medicines?", r"pharmacy", r"prescriptions?"),
    "document courier": (r"documents?", r"paperwork", r"contracts?", r"papers", r"signatures?"),
    "boat and island delivery": (r"islands?", r"boats?", r"cottage on", r"(?:on|across) the (?:lake|river|water)"),
    # public safety
    "accident reconstruction": (_CRASH, r"collisions?", r"pile-?ups?",
                                r"(?:car|traffic|vehicle|highway) accidents?",
                                r"wrecks?"),
    "search and rescue": (r"missing (?:hiker|person|child|kid|man|woman|boy|girl|swimmer|hunter|boater)s?",
                          r"capsized", r"overboard", r"drown(?:ing|ed)?",
                          r"wander(?:ed|s|ing)? (?:off|away)", r"dementia", r"alzheimers", r"search(?:ing)? party",
                          # who does it, and who needs it: "our rescue team", "someone in the water"
                          r"(?:water|swift ?water|ice|dive|rescue) (?:teams?|crews?|squads?|units?|calls?|missions?)",
                          r"(?:someone|somebody|person|people|swimmers?|kids?|boaters?|kayakers?) "
                          r"(?:\w+ )?(?:in|into|under) the (?:water|lake|river|current)"),
    "flood and storm response": (r"(?:rising|high) water", r"(?:river|creek|lake)s? (?:is |are )?(?:rising|cresting)",
                                 r"levees?", r"dikes?", r"evacuat(?:e|ion|ing)", r"(?:over|topping) (?:the|its) banks"),
    "event security": (r"crowds?", r"festivals?", r"concerts?", r"parades?"),
    # aerial photography
    "event photography": (_EVENT,),
    "family and portrait aerials": (r"famil(?:y|ies)", r"reunions?", r"group (?:shots?|photos?|pictures?|pics?)",
                                    r"portraits?"),
    "360 panoramas": (r"360",),
    "print-ready prints": (r"prints?", r"printed", r"canvas(?:es)?", r"framed"),
    # photos for a business's own promotion: the photo side of what commercial video is for video
    "business promo photos": (r"promo(?:tional)?", r"marketing", r"advert\w*",
                              r"(?:of|for) (?:our|my|the) (?:business|company|website|shop|store|restaurant|brewery|"
                              r"bakery|storefront|office)"),
    # real estate
    "twilight shots": (r"dusk", r"sunset (?:shots?|photos?|pictures?)", r"lights on"),
    # a listing's video is its tour: "can they also do video?", "a walkthrough for the listing"; a 3D (Matterport)
    # tour is a scan of the rooms, not a video: no listing's service
    "property video tour": (r"videos?", r"footage", r"walk-?throughs?", r"(?:virtual|video) tours?"),
}  # fmt: skip
