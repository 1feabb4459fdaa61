"""The categories: the closed set every listing belongs to, the phrases that point a query to each, and the
services the listings of each category offer (the generator's tags; bench judgements name them).

Phrases are regex alternatives over the normalised, lower-case query (`retrieval.query.normalize`), matched on
word boundaries. Each group has a weight: a specific phrase ("roof check", "crop spraying") outweighs a loose
word ("photos", "land"); a query points to every category scoring at least 2 (or to its best one).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["CATEGORIES", "CATEGORY_PHRASES", "CRASH", "FIRM", "SERVICES", "Category"]

# A phrase weighing less is a loose word ("photos", "land"): it names no service alone
FIRM = 2.0

Category = Literal[
    "delivery",
    "aerial_photography",
    "videography",
    "real_estate",
    "inspection",
    "thermal_imaging",
    "mapping_surveying",
    "agriculture",
    "construction",
    "public_safety",
    "training",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

# someone missing is search and rescue ("a missing hiker", "our son went missing"); a missing pet is thermal imaging
_PERSON = (r"(?:person|child|children|kid|kids|hiker|people|senior|man|woman|boy|girl|son|daughter|dad|mom|grandpa|"
           r"grandma)s?")

# a crash (not "i'd crash it": the drone, flown badly)
CRASH = r"crash(?:es)?(?! course| it\b| them\b| the drone\b| my drone\b)"

# a pet, said as such ("the puppy", "our two cats")
_PET = r"(?:pets?|dogs?|pup|pupp(?:y|ies)|cats?|kitt(?:y|ies|en|ens))"

CATEGORY_PHRASES: dict[Category, list[tuple[float, list[str]]]] = {
    "delivery": [
        # results handed over, not goods carried ("what file formats do they deliver", "deliver the photos by
        # friday"): the phrase claims the word and names no category (weight 0)
        (0.0, [r"(?:files?|formats?|results?|reports?|data|photos|pictures|images|footage|maps?|models?|videos?|"
               r"deliverables?|edits?) (?:\w+ ){0,3}?deliver(?:s|ed|ing)?",
               r"deliver(?:s|ed|ing)? (?:the |their |your |my |our |it |them )?(?:final )?(?:files?|results?|"
               r"reports?|data|photos|pictures|images|footage|maps?|models?|videos?|edits?)",
               # "how long to deliver" (the results of the job asked about)
               r"how (?:long|fast|soon|quick(?:ly)?) (?:\w+ ){0,3}?deliver(?:s|ed|ing)?(?= *(?:$|[?.!,;]))"]),
        (1.0, ["documents", "paperwork"]),  # papers to carry, or papers about the job ("the paperwork for the city")
        (3.0, [r"deliver(?:y|ies|ed|ing|s)?", r"courier(?:s|ed|ing)?", r"drop(?:s|ped|ping)?[- ]?offs?",
               "same[- ]day drop",
               # an errand flown for someone: "a parts run to the job site", "a pharmacy run"
               r"(?:parts?|supply|supplies|grocery|pharmacy|medicine|prescription|document|paperwork) runs?"]),
        (2.0, [r"medicines?", r"prescriptions?", "pharmacy", r"parcels?", r"packages?", "shipping", "aed",
               r"insulin", "supplies", "meds", r"medications?",
               # something carried out to someone: "supplies brought out to the cottage", "fly it over to us"
               r"(?:brought|bring|flown|carried|carry|sent|send) (?:out|over) to",
               r"(?:brought|bring|carried|carry|flown|run) (?:it |them |this |that |these )?over\b"]),
        (2.0, [r"(?:food|meal|takeout) (?:drop|run)s?", "to my boat", "island",
               # "drones can fly stuff right out to boats", "heart pills", "his blood pressure pills"
               r"(?:fly|flies|flying|flown|bring|brings|bringing|drop|dropping|take|taking|get|getting) "
               r"(?:\w+ ){0,3}?(?:out )?to (?:a |the |his |her |my |our |their )?(?:boats?|islands?|docks?|"
               r"cabin cruisers?|sailboats?)",
               r"(?:heart|blood pressure|diabetes|seizure|pain) (?:pills|meds|medicine|medication)", r"pills",
               # papers carried between two places: "signed contracts flown from our office to a client"
               r"signed (?:contracts?|documents?|papers?|forms?|paperwork|copies)",
               r"(?:flown|fly|flies|flying|sent|send|sending|carried|carry|taken|take|brought|bring) "
               r"(?!(?:the|a|my|our|his|her) (?:drone|uav|quad)\w*\b)(?:\w+ ){0,3}?"
               r"from (?:our|my|the|his|her|their) \w+(?: \w+)? to (?:a|an|the|our|my|their|his|her) \w+"]),
        # what is carried, and how: "auto parts dropped at the shop", "paperwork signed and returned"
        (2.0, [r"(?:auto|car|truck|spare|replacement|machine) parts",
               r"dropped (?:at|to|by)", r"flown (?:to|out|over)",
               # something flown somewhere: "fly a part over to our other plant" (not "fly the drone over to")
               r"fl(?:y|ies|ying) (?:a|an|the|some|this|that|these|those|my|our) (?!drones?\b|uavs?\b)(?:\w+ ){0,2}?"
               r"(?:over|out|across) to",
               # something got out to someone: "get a box of tackle out to our pontoon" (not "get the drone out")
               r"(?:get|gets|getting|take|taking) (?:a|an|the|some|this|that|these|those|my|our) (?!drones?\b|uavs?\b)"
               r"(?:\w+ ){0,3}?(?:out|over|across) to", r"to (?:my|our|the|a) (?:pontoon|sailboat|yacht)"]),
    ],
    "aerial_photography": [
        (3.0, [r"aerial (?:photo(?:s|graphy|graph|graphs)?|pictures?|pics?|pix|shots?|stills?|images?|imagery)",
               r"promo(?:tional)? (?:photos?|pictures?|pics?|pix|shots?|stills?|images?)"]),
        (2.5, [r"drone (?:photo(?:s|graphy)?|pictures?|shots?)", r"photographers?", "panoramas?", "portraits?",
               "aerials"]),
        (2.0, [r"calendars?", r"canvas(?:es)?", r"posters?", r"prints"]),  # what the picture is for
        (1.0, [r"photos?", r"fotos?", r"pictures?", r"pics?", "pix", r"photograph(?:y|ed|ing)?", "golf course",
               "landscape", r"shots?",
               "from (?:the air|above)"]),
        (2.5, [r"overhead (?:photos?|pictures?|pics?|shots?|images?|imagery)", r"birds?[- ]?eye(?: view)?",
               r"from (?:way )?up (?:high|above|top)", "from the sky"]),
    ],
    "videography": [
        (3.0, [r"weddings?", r"videograph(?:er|ers|y)", "cinematic", "music video", r"film(?:ing|s|ed|maker)?",
               # the wedding said as what happens: "we're getting married at a barn", "our daughter's elopement"
               r"(?:getting|get|got|be|being) married", r"elop(?:e|ing|ement)"]),
        # an event covered from the air: "drone coverage of the parade"
        (2.5, [r"(?:drone|aerial|video|air) coverage"]),
        (2.0, [r"videos?", r"vids?", r"footage", "commercial shoot", "promo", "highlight reel", "b-roll", "fpv"]),
        # games and races are filmed: "our 5k race", "the lacrosse tournament" (one phrase: the sport and its
        # tournament say one thing, and "photos of the soccer tournament" still asks for photos)
        (2.0, [r"(?:(?:football|soccer|baseball|lacrosse|hockey) )?(?:tournaments?|races?|regattas?)",
               "football", "soccer", "baseball", "lacrosse", "hockey",
               r"(?:fun|color|charity|\d+k) runs?", r"marathons?", r"triathlons?"]),
    ],
    "real_estate": [
        (3.5, [r"real ?estate", r"realtors?", "mls", r"listing (?:photos?|video)", "zillow", r"(?:house|home) for sale",
               r"(?:house|home|property|condo|rental) listings?",
               r"for (?:a|the|my|our|her|his|their) (?:(?:big|new|nice|huge|luxury|small|little) )?listing",
               # what is made of a listing: "video of a lakefront listing", "shots for our new listings"
               r"(?:photos?|pics?|pictures?|videos?|footage|shots?|aerials?) (?:of|for) (?:a|an|the|my|our|her|"
               r"his|their|this|that) (?:\w+ ){0,2}?listings?",
               # the same with a verb: "shoot a lakefront listing", "film our new listing"
               r"(?:shoot|shooting|film|filming|photograph|photographing) (?:a|an|the|my|our|her|his|their|this|"
               r"that) (?:\w+ ){0,2}?listings?",
               r"(?:goes|going|go|put it|putting it|list it) on the market", r"lot lines? overlays?",
               # "the listing goes live friday"
               r"(?:the |our |my |a )?listing (?:goes|going|is going|went) (?:live|up|on)",
               # a house by its style: "drone shots of a colonial in troy"
               r"(?:photos?|pics?|pictures?|shots?|videos?|footage|aerials?) of (?:a|an|the|our|my|her|his|their) "
               r"(?:\w+ )?(?:colonial|bungalow|cape cod|tudor|split[- ]level|craftsman|victorian|townhouse|"
               r"ranch house)",
               # the verb: "listing a lakefront house", "we're listing our condo next month"
               r"listing (?:a|an|my|our|the|his|her|their) (?:\w+ )?"
               r"(?:house|home|condo|property|cottage|cabin|ranch)"]),
        (3.0, [r"sell(?:ing)? (?:my|a|the|our|his|her|their) (?:\w+ )?(?:house|home|property|condo|cottage|cabin|"
               r"colonial|bungalow|townhouse|ranch)",
               r"property (?:photos?|video(?: tour)?|tour(?: video)?)",  # "a property tour video": one phrase
               "open house", "twilight", r"dusk (?:shots?|photos?|pictures?|pics?)",
               r"(?:video|virtual|3d) (?:walk-?through|tour)s?", r"walk-?throughs?",
               r"commercial propert(?:y|ies)", r"vacant (?:land|lots?|parcels?)", r"neighbou?rhood amenities",
               r"(?:for|before|when) selling"]),
    ],
    "inspection": [
        # damage the operator might do ("what happens if they damage something"): a question of liability (weight 0)
        (0.0, [r"(?:they|you|the (?:drone|pilot|operator)|it|he|she) (?:\w+ ){0,2}?(?:damages?|damaged|breaks?|"
               r"crash(?:es)? into)"]),
        (3.0, [r"roof(?:s|ing|ers?)?(?: (?:check|inspection|survey|look))?", r"chimneys?", r"gutters?", r"shingles?",
               r"inspect(?:ion|ions|ed|or)?"]),
        (2.5, ["storm damage", "hail", "wind damage",
               r"(?:cell(?: phone)?|radio|telecom|communications?|water) towers?", r"bridges?", r"facades?",
               "insurance claim",
               r"solar (?:panels?|arrays?|modules?)", "siding", r"(?:insurance )?adjusters?"]),
        (2.0, [r"damaged?", r"trees? (?:fell|fall|fallen|came down)", r"brick(?:work|s)?", "masonry", r"steeples?",
               r"crack(?:s|ed)?", r"caulk(?:ing)?", "sealant", r"high[- ]rises?", r"power lines?",
               r"utility (?:poles?|lines?)", r"wind turbines?", r"turbine blades?", r"rust(?:ing|ed|y)?", "corrosion"]),
    ],
    "thermal_imaging": [
        (3.5, [r"moisture (?:survey|scan|map(?:ping)?)s?", "wet insulation"]),
        (3.5, [r"(?:missing|lost|runaway) (?:pets?|dogs?|cats?)",
               # "my buddy lost his dog", "we lost our cat": lost, said of the pet
               rf"lost (?:my|our|his|her|their|the|a) (?:\w+ )?{_PET}\b",
               # "can a drone actually find a dog?"
               rf"\bfind (?:a|the) (?:lost )?{_PET}\b",
               # a pet gone, said as what happened: "the dog ran off", "our cat got out last night"
               rf"{_PET},? (?:\w+ ){{0,2}}?(?:ran|run|runs|got|went|slipped|wandered|bolted|escaped|took) "
               r"(?:off|away|out|loose)",
               rf"(?:cant|cannot|can not|couldnt) find (?:my|our|the|his|her|their) {_PET}",
               # "help finding my cat", "looking for our dog"
               rf"(?:find|finding|look(?:ing)? for|search(?:ing)? for|track(?:ing)? down) (?:my|our|his|her|their) "
               rf"(?:\w+ )?{_PET}\b"]),
        (3.0, [r"thermal", r"infra-?red", "heat loss", r"thermograph(?:y|er)", r"hot ?spots?", "flir",
               r"heat (?:vision|cameras?|cams?|sensing|seeking)",
               r"solar farms?"]),
        (2.0, ["insulation", "moisture", "energy audit", "leak detection", "heat signature", "wildlife", "deer",
               "geese", r"damp(?:ness)?"]),
        # the symptoms a heat picture finds: a cold house, a leaking pipe
        (3.0, [r"draft(?:s|y)", r"cold (?:spots?|rooms?|upstairs|floors?)", r"(?:so|too|always|really|very) cold",
               r"(?:heating|energy|gas|water) bills?",
               r"(?:heat|warm air|air) (?:is )?(?:leak(?:s|ing)?|escap(?:es|ing))",
               r"(?:pipe|water|slab) leaks?", r"leak(?:s|ing|y)? (?:pipes?|water lines?)",
               r"(?:sewer|water|gas) (?:lines?|mains?|pipes?)", r"(?:buried|underground) (?:pipes?|lines?)",
               r"(?:losing|lose|loses|lost|wasting) (?:\w+ )?heat", r"ice dams?",
               # a count of animals is made by their heat: "how many deer are on the property"
               r"(?:count|counting|how many) (?:\w+ ){0,2}?(?:deer|geese|animals|wildlife|birds|coyotes|hogs)",
               r"pipes? (?:is |are )?leak(?:s|ing)",
               # "the water line under the yard is leaking", "the main must be leaking"
               r"(?:water |sewer |gas )?(?:line|main|plumbing)s? (?:\w+ ){0,3}?"
               r"(?:is |are |must be |might be )?leak(?:s|ing)",
               r"wet spots? (?:in|on) the (?:yard|lawn|floor|slab)"]),
    ],
    "mapping_surveying": [
        (3.0, [r"survey(?:s|ing|ed|or|ors)?", r"mapp?(?:ing|s|ed)?", r"topo(?:graphic|graphy)?", "orthomosaic",
               # many photos stitched into one map: "the stitched together kind"
               r"stitched(?: together)?",
               r"contours?", "gis", r"3d (?:scans?|scanning|models?|maps?)", r"ortho(?:photo|image)s?",
               r"split(?:ting)? (?:off|up) (?:a few |some |the |part of the )?(?:acres?|lots?|land|parcels?|property)",
               r"lot splits?", "land division"]),
        (2.0, [r"acreage", r"boundar(?:y|ies)", r"lot lines?", r"3d models?", r"(?:stock)?piles?", r"volumes?",
               r"my land", "parcel map", r"(?:other|land|vacant|wooded|farm|acre) parcels?", r"parcels? of land",
               r"lidar", r"slopes?", r"elevations?", r"property (?:lines?|corners?|pins?)", r"fence ?lines?"]),
        (1.0, [r"land", "drainage"]),
        # where water goes: "water keeps pooling in the backyard", "standing water by the driveway"
        (2.0, [r"(?:water|rain(?:water)?) (?:\w+ )?(?:pool(?:s|ing)?|puddl(?:es|ing)|stands|sits|collects)",
               r"standing water", r"runoff",
               r"(?:yard|lot|driveway|basement|garage|crawl ?space) (?:keeps |got |was |is )?flood(?:s|ed|ing)?",
               r"sump pumps?",
               # "where the water goes", "the pond keeps overflowing onto the neighbors"
               r"where (?:the |all the |our |my )?(?:water|rain(?:water)?|runoff) (?:goes|drains|runs|flows|ends up)",
               r"(?:ponds?|creeks?|ditch(?:es)?|drains?|culverts?) (?:keeps? |is |are )?overflow(?:s|ing|ed)?"]),
    ],
    "agriculture": [
        (3.0, [r"crops?", r"spray(?:ing|s|ed|er)?", r"dust(?:ing|er)", r"farms?", r"farm(?:ing|er|ers)",
               r"agricultur\w*", "ndvi", r"orchards?", r"vineyards?"]),
        (2.0, [r"cows?", r"pastures?", r"herds?", "horses", "sheep", "goats"]),
        # a map of how the plants are doing, not of the land: "health maps of the corn", "a plant health scan"
        (3.5, [r"(?:(?:crop|plant|field|vegetation) )?(?:health|vigou?r) (?:maps?|mapping|scans?|surveys?|imagery)"]),
        # how the crop is doing: "which rows are growing well", "the vines look stressed"
        (2.0, [r"yields?", r"(?:plant|crop|vine|tree) (?:health|stress)", r"growing (?:well|poorly|good|bad)",
               r"stressed (?:plants|crops|vines|trees|rows)"]),
        # the crops themselves, and looking them over: "scout my wheat", "the bean field", "our hay"
        (2.0, [r"wheat", r"oats", r"barley", r"alfalfa", r"hay", r"beans", r"sugar ?beets?",
               r"scout(?:s|ing|ed)? (?:my|our|the|his|her|their|a|some) (?:\w+ )?(?:fields?|rows|acres|crops?|wheat|"
               r"corn|beans|soybeans|oats|barley|alfalfa|hay)"]),
        (1.0, [r"scout(?:s|ing|ed)?"]),  # "i'd rather just scout first": loose alone (location scouting is film's)
        (2.0, [r"fields?", r"seed(?:ing)?", "cover crops?", "livestock", "cattle", "corn", r"soybeans?", "fungicide",
               "herbicide", r"(?<!\d )(?<!\d-)(?<!\d)acres?",  # "5 acres" is a size
               r"fertiliz(?:er|ers|ing|e)", r"pesticides?", r"insecticides?", r"top ?dress(?:ing)?"]),
    ],
    "construction": [
        (3.0, ["construction", r"job ?sites?", r"contractors?", r"builders?", r"(?:site|build) progress",
               r"progress (?:photos?|pics?|pictures?|shots?|videos?|updates?|monitoring|reports?)", r"as[- ]?built",
               "earthwork", "groundbreaking", r"site (?:photos?|pics?|pictures?|shots?)", "being built"]),
        # a build followed over time: "monthly updates for the board", "we're building a new school"
        (3.0, [r"progress (?:on|of) (?:the |our |my |a )?(?:new )?(?:\w+ )?(?:build|building|school|house|home|"
               r"project|site|construction|addition|store|church|warehouse|plant|office)",
               r"progress (?:on|of) (?:the |our |my |a )?new \w+"]),
        (2.0, [r"(?:monthly|weekly|biweekly|regular) (?:updates?|flyovers?|fly-?overs?|site visits?)",
               r"(?:were|we are|they are|theyre|currently) (?:building|constructing|putting up)"]),
        # where a build goes: "where to put the house and driveway on our new acreage"
        (3.0, [r"where to (?:put|build|place|locate|site) (?:the |a |our |my )?(?:new )?(?:\w+ )?"
               r"(?:house|home|barn|building|driveway|garage|pond|septic|shop)"]),
        (2.0, ["time[- ]?lapse", "site plan(?:ning)?", r"safety audits?", r"excavat(?:ion|ing|ors?)", "cut and fill",
               "new build", "dirt", "general contractor"]),
    ],
    "public_safety": [
        (3.5, [r"(?:accident|crash) (?:scene|reconstruction)s?",
               # a wreck to be mapped is a reconstruction: "the collision needs to be mapped for court"
               r"(?:accidents?|crash(?:es)?|collisions?|wrecks?) (?:\w+ ){0,6}?(?:map|mapping|mapped|reconstruct\w*)",
               r"(?:map|mapping|mapped|reconstruct\w*) (?:\w+ ){0,3}?(?:accidents?|crash(?:es)?|collisions?|wrecks?)",
               # a wreck to be recorded: "the crash site documented from above", "photograph the collision scene"
               r"(?:accidents?|crash(?:es)?|collisions?|wrecks?) (?:\w+ ){0,8}?(?:document\w*|scenes?|sites?)",
               r"(?:document\w*|photograph\w*|record\w*) (?:\w+ ){0,3}?"
               r"(?:accidents?|crash(?:es)?|collisions?|wrecks?)"]),
        # the service's own name outweighs what is watched over: "event security for the football game"
        (3.5, [r"(?:event|crowd) (?:security|safety|control|monitoring|management)", "security (?:overwatch|detail)"]),
        (3.5, ["search and rescue", "sar", rf"missing {_PERSON}",
               rf"{_PERSON} (?:is |went |has gone |has been )?missing", "first responders?", "police",
               # someone who walked away: "my dad wandered off", "grandma has dementia and got out"
               rf"{_PERSON} (?:\w+ ){{0,2}}?(?:wander(?:ed|s|ing)?|walked|ran) (?:off|away)", "dementia", "alzheimers",
               r"search(?:ing)? (?:party|for (?:him|her|them|my|our))", r"help search(?:ing)?",
               "fire department", "fire scene", "emergency response",
               r"fire (?:dept|marshal|chief|investigat(?:ion|ors?))", r"capsized", "overboard", r"drown(?:ing|ed)?"]),
        (2.0, ["rescue", r"missing", "security", "overwatch", r"accidents?", r"collisions?", CRASH,
               r"wrecks?", r"pile-?ups?", r"flood(?:s|ed|ing)?",
               "hazmat", "crowd",
               r"(?:need|start|begin|organi[sz]e|help with) (?:a |the )?search(?:es|ing)?"]),
        (3.0, [r"(?:chemical|gas|oil|fuel|toxic) (?:spill|leak|release)s?",
               # water on the way: "the river is rising", "watch the levee", "we may have to evacuate"
               r"(?:river|water|creek|lake|flood ?water)s? (?:is |are |keeps? )?(?:rising|cresting|coming up)",
               # the river by its name: "river raisin is coming up fast", "the clinton river is rising"
               r"(?:river \w+|\w+ river|\w+ creek) (?:is |are |keeps? )?"
               r"(?:rising|cresting|coming up|over (?:its|the) banks?)",
               r"(?:over|topping) (?:the|its) banks", r"levees?", r"dikes?", r"evacuat(?:e|ion|ing)"]),
    ],
    "training": [
        (3.5, [r"(?:mapping|photogrammetry|flight planning) software", "pix4d", "dronedeploy",
               r"thermal (?:camera )?(?:training|courses?|class(?:es)?|certification|lessons?)",
               # a skill taught: "teach our firefighters thermal", "train the crew on mapping"
               r"(?:teach|train)\w* (?:\w+ ){0,3}?(?:on |in |to use )?"
               r"(?:thermal|infrared|mapping|fpv|photogrammetry)",
               # the flying itself taught, whatever it is for: "teach me to fly for real estate shoots"
               r"(?:teach|train|show)\w* (?:me|us|him|her|them|(?:my|our) \w+) (?:how )?to (?:fly|pilot|operate)"]),
        (3.0, [r"train(?:ing|er|ed|ers)?", r"lessons?", "learn to fly", r"courses?", r"class(?:es)?", "flight school",
               r"part 107 (?:test|exam|prep|course|certification|license|licence|certificate)",
               r"(?:get|earn|pass|study for|prepare for|prep for) (?:my |the |your |a )?part 107",
               # one's own people certified: "need my part 107", "3 of my guys need their part 107"
               r"(?:need|needs|want|wants) (?:my|our) part 107",
               r"(?:my|our) (?:guys|employees|staff|team|crew|pilots|workers|people|techs|technicians|son|daughter|"
               r"kid|kids|husband|wife) (?:\w+ ){0,2}?(?:need|needs|get|getting|earn|pass|want|wants)\w* "
               r"(?:their|his|her|the|a) part 107",
               # "how do I get a commercial drone license", "getting certified to fly commercially"
               r"(?:become|becoming|get|getting) (?:a )?(?:faa |part 107 )?(?:certified|licensed)",
               r"(?:get|getting|earn|obtain) (?:my |the |your |a )?(?:commercial )?(?:faa )?(?:drone |pilot |uav )?"
               r"(?:licen[cs]e|certificate)",
               r"teach(?:ing|es|ers?)?", r"instructors?", r"tutors?",
               r"(?:faa|drone|pilot|knowledge|certification) (?:test|exam)s?",
               # doing it oneself: "I want to do my own mapping, which software?"
               r"(?:do|fly|make|run|process) (?:my|our|his|her|their) own (?:mapping|maps|surveys?|inspections?|"
               r"flying|flights|photos|video)", r"(?:best|good|easiest|cheapest) (?:\w+ ){0,2}?software",
               r"(?:which|what) software (?:should|would|to|can|do) (?:i|we)"]),
        (2.0, ["learn", "beginner", r"become a (?:drone )?pilot", "get certified", "certification"]),
    ],
}

SERVICES: dict[str, tuple[str, ...]] = {
    "delivery": ("prescription delivery", "medical supplies", "small parcel delivery", "food delivery",
                 "parts delivery", "boat and island delivery", "document courier"),
    "aerial_photography": ("aerial photos", "360 panoramas", "event photography", "business promo photos",
                           "family and portrait aerials", "golf course and landscape photography",
                           "print-ready prints"),
    "videography": ("wedding videography", "event videography", "commercial video", "music video", "sports filming",
                    "documentary b-roll", "editing and color grading"),
    "real_estate": ("listing photos", "property video tour", "lot lines overlay", "twilight shots",
                    "commercial property", "vacant land", "neighborhood amenities"),
    "inspection": ("roof inspection", "chimney inspection", "storm damage assessment", "gutter check",
                   "solar panel inspection", "cell tower inspection", "bridge inspection", "facade inspection"),
    "thermal_imaging": ("building heat loss", "flat roof moisture survey", "solar farm thermography",
                        "electrical hot spots", "livestock and wildlife counts", "search for missing pets",
                        "pipe and leak detection"),
    "mapping_surveying": ("land survey", "topographic mapping", "orthomosaic maps", "volume calculations", "3d models",
                          "property boundary mapping", "drainage analysis"),
    "agriculture": ("crop spraying", "cover crop seeding", "crop scouting", "ndvi crop health maps",
                    "orchard and vineyard spraying", "livestock monitoring", "drainage tile mapping"),
    "construction": ("progress monitoring", "site planning", "earthwork volumes", "as-built documentation",
                     "safety audits", "time-lapse"),
    "public_safety": ("search and rescue", "fire scene overwatch", "event security", "accident reconstruction",
                      "flood and storm response", "hazmat assessment"),
    "training": ("part 107 test prep", "hands-on flight lessons", "thermal training", "mapping software training",
                 "corporate team training", "fpv lessons"),
}  # fmt: skip
