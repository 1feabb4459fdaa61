"""The deterministic query parser: places (near/in, counties, aliases, typos, outside the area), category
synonyms, price limits, distances, features, and one pass: a filter phrase's words match nothing else."""

from __future__ import annotations

import pytest

from retrieval.places import load_gazetteer
from retrieval.query import QueryParser
from retrieval.vocab import named_services
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    return QueryParser(load_gazetteer(ROOT / "data" / "places.json"))


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("roof check", "inspection"),
        ("wedding video", "videography"),
        ("crop spraying", "agriculture"),
        ("survey my land", "mapping_surveying"),
        ("deliver medicine to grandma", "delivery"),
        ("photos of my house for sale", "real_estate"),
        ("heat loss scan of my house", "thermal_imaging"),
        ("missing hiker search and rescue", "public_safety"),
        ("weekly job site progress photos", "construction"),
        ("part 107 test prep class", "training"),
        ("aerial photos of the family farm reunion", "aerial_photography"),
        ("drone photos for a house listing", "real_estate"),
        ("help me study for my part 107", "training"),
    ],
)
def test_category_synonyms(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "place", "fuzzy"),
    [
        ("roof inspection near Troy", "Troy", False),
        ("videographer in ann arbor", "Ann Arbor", False),
        ("a2 graduation photos", "Ann Arbor", False),
        ("roof check in Sterling Hieghts", "Sterling Heights", True),
        ("Farmington Hils drone pictures", "Farmington Hills", True),
        ("lessons Livonai", "Livonia", True),
        ("spraying in Lapeer County", "Lapeer County", False),
        ("boat delivery Saint Clair Shores", "St. Clair Shores", False),
        ("mapping Mt. Clemens", "Mount Clemens", False),
    ],
)
def test_places(parser: QueryParser, query: str, place: str, fuzzy: bool) -> None:
    it = parser.parse(query)
    assert it.place is not None and it.place.name == place
    assert it.fuzzy_place is fuzzy
    assert place.split()[0].lower() not in it.text  # the place is not searched as text


def test_outside_the_service_area(parser: QueryParser) -> None:
    it = parser.parse("drone delivery in Chicago")
    assert it.place is None and it.outside_place is not None and it.outside_place.name.startswith("Chicago")
    assert it.category == "delivery"
    # a place of ours wins over an outside one named in the same query
    assert parser.parse("from Toledo to Monroe").place.name == "Monroe"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("query", "price", "radius"),
    [
        ("real estate photos under $150", 150.0, None),
        ("videographer below 1,200 dollars", 1200.0, None),
        ("survey max $2k", 2000.0, None),
        ("delivery $40 or less", 40.0, None),
        ("mapping within 20 miles of Novi", None, 20.0),
        ("inspector under 10 miles from Troy", None, 10.0),
        ("roof inspection under $300.", 300.0, None),
        ("lessons, budget is like $100 a session", 100.0, None),
        ("lessons at $100 a session tops", 100.0, None),
        # a cap said without a dollar sign, as a refusal, or in words
        ("survey, keep it 90 tops", 90.0, None),
        ("gutter check, 120 bucks max", 120.0, None),
        ("we can't pay over 80 for the delivery", 80.0, None),
        ("i won't spend more than $600 on a video", 600.0, None),
        ("a thermal scan for less than a hundred and fifty?", 150.0, None),
        ("part 107 class, three hundred dollars at most", 300.0, None),
        ("a commercial shoot for two grand or less", 2000.0, None),
        ("forty five acres to spray", None, None),
        ("inspector 15 miles max from Troy", None, None),
        ("I'd spend more than $500 for a great wedding film", None, None),
        # what the customer can afford, and a cap said as "go over"
        ("we could maybe afford 175 for a chimney look", 175.0, None),
        ("thermal scan, can't afford much, like $220?", 220.0, None),
        ("the club can afford 3 lessons", None, None),
        ("we shouldn't go over $90 for the courier", 90.0, None),
        # the hundred left out, as prices are said aloud
        ("a gutter check for two fifty or less", 250.0, None),
        ("thermal scan, under three twenty five", 325.0, None),
    ],
)
def test_price_and_distance(parser: QueryParser, query: str, price: float | None, radius: float | None) -> None:
    it = parser.parse(query)
    assert it.max_price == price
    assert it.radius_miles == radius


def test_features_and_several_categories(parser: QueryParser) -> None:
    it = parser.parse("thermal inspection at night, insured, same day")
    assert {"night_ops", "thermal_camera", "same_day"} <= set(it.features)
    assert it.insured is True
    assert set(it.categories) == {"inspection", "thermal_imaging"}


def test_no_false_places_or_prices(parser: QueryParser) -> None:
    it = parser.parse("the best drone guy for my restaurant video")
    assert it.place is None and it.outside_place is None and it.max_price is None
    assert it.text  # never empty
    assert parser.parse("Detroit").text == "drone services"


def test_filter_phrases_are_read_first_and_match_nothing_else(parser: QueryParser) -> None:
    it = parser.parse("drone video up to 5k in Troy")
    assert it.max_price == 5000 and "4k_video" not in it.features  # "5k" is a budget here, not a camera
    it = parser.parse("insured roof inspector Farmington Hills")
    assert it.insured is True and it.text == "roof inspector"
    it = parser.parse("mapping within 20 miles of Novi")
    assert (it.radius_miles, it.place.name if it.place else None, it.text) == (20.0, "Novi", "mapping")


def test_a_value_the_filter_refuses_is_dropped_and_not_searched(parser: QueryParser) -> None:
    it = parser.parse("roof inspection within 500 miles")
    assert it.radius_miles is None and it.text == "roof inspection"
    it = parser.parse("roof inspection under $0")
    assert it.max_price is None and it.text == "roof inspection"


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("no more video please, aerial stills of the venue", "aerial_photography"),
        ("skip the spraying, I just want crop scouting flights", "agriculture"),
        ("forget about the wedding film, teach me to fly", "training"),
        ("we don't need a realtor, we want a survey of the lot", "mapping_surveying"),
        ("a video tour of the property instead of photos", "real_estate"),
    ],
)
def test_a_service_turned_down_is_not_what_is_asked(parser: QueryParser, query: str, category: str) -> None:
    it = parser.parse(query)
    assert it.category == category
    assert len(it.categories) == 1  # the turned-down service is not counted at all


def test_turned_down_words_are_not_searched_and_features_too(parser: QueryParser) -> None:
    it = parser.parse("inspect the chimney, not the roof")
    assert it.category == "inspection" and "roof" not in it.text.split() and "chimney" in it.text.split()
    assert "weekend_availability" not in parser.parse("facade inspection, weekdays only, not on weekends").features
    assert "night_ops" in parser.parse("not just photos, night video too").features


def test_a_lake_named_after_a_place_is_not_that_place(parser: QueryParser) -> None:
    it = parser.parse("deliver bait to my boat out on Lake St. Clair")
    assert it.place is None and it.outside_place is None
    it = parser.parse("food to a pontoon on lake st clair, we launch from algonac")
    assert it.place is not None and it.place.name == "Algonac"
    it = parser.parse("gutter check in lake orion")  # a place whose own name starts with Lake
    assert it.place is not None and it.place.name == "Lake Orion"


def test_photos_for_a_listing_are_real_estate(parser: QueryParser) -> None:
    assert parser.parse("aerial pictures of the condo for her listing").category == "real_estate"
    assert parser.parse("shots of the farmhouse before it goes on the market").category == "real_estate"


def test_a_place_name_asks_for_no_service(parser: QueryParser) -> None:
    it = parser.parse("gutter check at my mom's in Grosse Pointe Farms")  # "farms" is part of the name
    assert it.categories == ["inspection"] and it.place is not None and it.place.name == "Grosse Pointe"


@pytest.mark.parametrize(
    ("query", "place"),
    [
        ("we're in macomb county, out near romeo", "Romeo"),
        ("oakland co, Clawson to be exact", "Clawson"),
        ("not Troy, I meant Clawson", "Clawson"),
        ("sorry, not in warren - in fraser", "Fraser"),
    ],
)
def test_the_place_meant_is_the_most_precise_one_not_turned_down(parser: QueryParser, query: str, place: str) -> None:
    it = parser.parse(query)
    assert it.place is not None and it.place.name == place


def test_several_services_turned_down_together(parser: QueryParser) -> None:
    it = parser.parse("no video or photos, just a survey of the acreage")
    assert it.categories == ["mapping_surveying"]
    assert "video" not in it.text.split() and "photos" not in it.text.split()
    assert parser.parse("no video, photos of the venue").category == "aerial_photography"  # a comma ends it


def test_everyday_words_for_photos_and_features(parser: QueryParser) -> None:
    assert parser.parse("drone pics of our cabin").category == "aerial_photography"
    assert "same_day" in parser.parse("can anyone do it on short notice").features
    assert "live_stream" in parser.parse("do any of them do livestreams").features


def test_a_size_in_acres_asks_for_no_farming(parser: QueryParser) -> None:
    assert parser.parse("aerial photos of my 5 acre lot").category == "aerial_photography"
    assert parser.parse("spray 40 acres of wheat").category == "agriculture"


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("promotional pictures of our brewery from above", "aerial_photography"),
        ("aerials of a strip mall, commercial property", "real_estate"),
        ("pictures of the vacant lot we're trying to sell", "real_estate"),
        ("a lot line overlay on the photo of our acreage", "real_estate"),
        ("thermography of a solar farm", "thermal_imaging"),
        ("our lost dog ran into the woods", "thermal_imaging"),
        ("my buddy lost his dog yesterday over in brighton, can a drone actually find a dog??", "thermal_imaging"),
        ("count the deer on our property", "thermal_imaging"),
        ("how big is that pile of gravel", "mapping_surveying"),
        ("who teaches drone flying", "training"),
        ("siding damage on the second story", "inspection"),
    ],
)
def test_the_listings_own_services_in_customers_words(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


def test_a_5k_race_is_no_camera(parser: QueryParser) -> None:
    assert "4k_video" not in parser.parse("photos of our 5k run").features
    assert "4k_video" not in parser.parse("aerial video of the church 5k fundraiser").features
    assert "4k_video" in parser.parse("video in 5k resolution").features


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("how many yards of dirt did the excavator move", "construction"),
        ("a big limb came down on the shed, the adjuster wants to see the damage", "inspection"),
        ("a tutor for the faa knowledge test", "training"),
        ("3d scanning of a historic barn", "mapping_surveying"),
        ("our solar array output dropped", "inspection"),
        ("my grandpa went missing on a walk, a heat camera would help", "public_safety"),
        ("find our runaway dog with heat vision", "thermal_imaging"),
        ("3 of my guys need their part 107, we're a roofing company in warren", "training"),  # their trade: scenery
        ("need my part 107 before spring", "training"),
        ("the pilot needs their part 107 license, roof inspection in troy", "inspection"),  # asked of the operator
        ("i still need someone to shoot a lakefront listing in waterford", "real_estate"),
        ("someone said drones can fly stuff right out to boats now?", "delivery"),
        ("grandpa keeps running out of his heart pills", "delivery"),
        # a basement flooding asks where water goes, not for a rescue
        ("my basement flooded, can a drone check if my sump pump line is clogged?", "mapping_surveying"),
        ("the river is flooding in Monroe, people stranded", "public_safety"),
        ("could someone at least film it from above, for the family that cant come", "videography"),  # "at least"
        ("need signed contracts flown from our southfield office to a client", "delivery"),  # no "contractor"
        ("listing goes live friday and my photographer is out sick, drone shots of a colonial", "real_estate"),
        ("we're selling our colonial, need photos of the yard", "real_estate"),
        ("river raisin is coming up fast behind the subdivision", "public_safety"),
        ("realestate fotos for a condo in st clare shores", "real_estate"),
    ],
)
def test_more_customer_words(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "outside"),
    [
        ("a destination wedding in Paris, France", "Paris, France"),
        ("roof check on our condo in Naples FL", "Naples, Florida"),
        ("cabin photos, it's up north past Gaylord", "Northern Michigan, Michigan"),
        ("crop spraying for a farm in Ohio", "Ohio, United States"),
        ("ag spraying near Adrian", "Adrian, Michigan"),
    ],
)
def test_more_places_outside_the_area(parser: QueryParser, query: str, outside: str) -> None:
    it = parser.parse(query)
    assert it.place is None and it.outside_place is not None and it.outside_place.name == outside


def test_canada_geese_are_no_place(parser: QueryParser) -> None:
    it = parser.parse("count the canada geese on our pond")
    assert it.outside_place is None


@pytest.mark.parametrize(
    ("query", "category"),
    [
        # who the customer is sets the scene, what they ask for is the service
        ("we run a cider orchard near Romeo and want an overhead picture of the harvest festival crowd",
         "aerial_photography"),
        ("I work for a roofing outfit, we want someone to film a promo for us", "videography"),
        # where it happens too
        ("need photos of the whole team standing out in the field", "aerial_photography"),
        # and for whom
        ("fpv lessons for our police department's new drone team", "training"),
        # a service word alone still counts
        ("we have a farm near Capac", "agriculture"),
        ("my grandpa has 60 acres, need to know the slope and where the property corners are", "mapping_surveying"),
    ],
)
def test_who_and_where_weigh_less_than_what_is_asked(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


def test_the_scene_ends_with_its_sentence(parser: QueryParser) -> None:
    it = parser.parse("We have a couple of rental houses in Ferndale. Need a thermal scan of one for heat loss.")
    assert it.category == "thermal_imaging" and it.place is not None and it.place.name == "Ferndale"
    assert parser.parse("boat drop at St. Clair Shores.").place.name == "St. Clair Shores"  # type: ignore[union-attr]
    assert parser.parse("my uncle wants to split off part of the land for my cousin").category == "mapping_surveying"


def test_insurance_asked_of_the_operator_is_insured_but_a_claim_is_not(parser: QueryParser) -> None:
    assert parser.parse("do any of them carry insurance?").insured is True
    assert parser.parse("proof of insurance required, gutter check in Novi").insured is True
    claim = parser.parse("I need pictures of the roof with the insurance claim in mind")
    assert claim.insured is None and claim.category == "inspection"


@pytest.mark.parametrize(
    ("query", "feature"),
    [
        ("anyone free to fly after hours", "night_ops"),
        ("could somebody come out tonight", "same_day"),
        ("we need it this afternoon if possible", "same_day"),
        ("shoot the barn before sunrise", "night_ops"),
        ("do they take emergencies", "emergency_callout"),
    ],
)
def test_when_in_customers_words(parser: QueryParser, query: str, feature: str) -> None:
    assert feature in parser.parse(query).features


@pytest.mark.parametrize(
    ("query", "category"),
    [
        # a verb of the service in another tense, an errand flown for someone
        ("can the lab samples be couriered over by lunch", "delivery"),
        ("spare fittings dropped off at the marina", "delivery"),
        ("a quick pharmacy run for grandpa", "delivery"),
        ("a supply run out to our construction trailer", "delivery"),
    ],
)
def test_delivery_said_as_an_errand_or_in_the_past_tense(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


def test_a_tour_video_of_a_property_is_real_estate_alone(parser: QueryParser) -> None:
    it = parser.parse("a property video tour for our luxury listing")
    assert it.category == "real_estate" and it.categories == ["real_estate"]
    assert parser.parse("photos for a new listing in Clawson").category == "real_estate"


def test_flying_inside_a_home_or_venue_is_indoor_flight(parser: QueryParser) -> None:
    assert "indoor_flight" in parser.parse("a fly-through inside of the church").features
    assert "indoor_flight" in parser.parse("shots inside our home").features


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("we need the back forty mapped before we sell", "mapping_surveying"),
        ("had the parcel surveyed years ago, need it redone", "mapping_surveying"),
        ("want the wheat sprayed next week", "agriculture"),
        ("our team photographed from up high", "aerial_photography"),
    ],
)
def test_a_service_said_as_a_past_participle(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "category"),
    [
        # what the customer sees or fears rather than the service's name
        ("the bedrooms over the garage are drafty", "thermal_imaging"),
        ("our gas bill doubled, where is the heat escaping", "thermal_imaging"),
        ("a slab leak somewhere under the kitchen", "thermal_imaging"),
        ("loose masonry on the bell tower", "inspection"),
        ("a gas leak at the depot, responders need eyes up top", "public_safety"),
        ("the river flooded half the subdivision", "public_safety"),
        # how they say the picture or the film
        ("a birds-eye shot of the cottage", "aerial_photography"),
        ("a picture of the whole crew from up high", "aerial_photography"),
        ("film the regatta for the yacht club", "videography"),
        ("short vid for our bakery's instagram", "videography"),
        # and the rest of the trades
        ("progress pics every friday on the warehouse", "construction"),
        ("our new clinic being built on Main St", "construction"),
        ("we're putting up a church hall and the pastor wants weekly updates, video is fine", "construction"),
        ("an orthophoto of the school grounds", "mapping_surveying"),
        ("keep an eye on the herd in the north pasture", "agriculture"),
        ("which rows are growing poorly this year", "agriculture"),
        ("the hops look stressed, is it the plant health", "agriculture"),
        ("teach our staff pix4d", "training"),
        ("spare parts dropped at the plant gate", "delivery"),
        ("some nice shots of our orchard for the farm stand's calendar", "aerial_photography"),
        ("a canvas print of the cottage from above", "aerial_photography"),
        ("is the caulking failing up on the high-rise", "inspection"),
        ("a heat cam to see where the critters get in", "thermal_imaging"),
    ],
)
def test_customers_words_for_what_they_need(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "feature"),
    [
        ("the footage has to be ultra HD", "4k_video"),
        ("grandparents want to watch it live from Arizona", "live_stream"),
        ("we'd broadcast the launch to the whole company", "live_stream"),
        ("the kind that stays up on a cord all afternoon", "tethered"),
        ("needs to be survey accurate for the engineer", "rtk_gps"),
        ("elevations to within an inch", "rtk_gps"),
        ("we need the grade under the canopy of the woodlot", "lidar"),
        ("scan it with an IR camera", "thermal_camera"),
        ("is somebody on call 24 7", "emergency_callout"),
        ("the fireworks start after sundown", "night_ops"),
        ("photos back by end of the day", "same_day"),
        ("search the field once it gets dark", "night_ops"),
        ("filming the rally in high-res video", "4k_video"),
        ("lessons flying with goggles, first person view", "fpv"),
        ("a look through the ductwork at the plant", "indoor_flight"),
        ("send it as soon as possible", "same_day"),
        ("someone we can call any time of the night", "emergency_callout"),
        ("a camera that picks up a person's body heat in the brush", "thermal_camera"),
        ("so the pilot can spot the deer by their heat", "thermal_camera"),
    ],
)
def test_equipment_and_timing_in_customers_words(parser: QueryParser, query: str, feature: str) -> None:
    assert feature in parser.parse(query).features


def test_a_word_like_a_far_away_place_is_no_place_without_a_preposition(parser: QueryParser) -> None:
    it = parser.parse("drop the package from a rope, there is no landing area")
    assert it.outside_place is None and it.place is None
    typo = parser.parse("a roof inspection in Lansng")  # said as where: still read, and out of the area
    assert typo.outside_place is not None and typo.outside_place.name.startswith("Lansing")


@pytest.mark.parametrize(
    ("query", "place"),
    [("a gutter check somewhere downriver", "Southgate"), ("who flies in southeast Michigan", "Detroit")],
)
def test_regions_of_the_area_customers_name(parser: QueryParser, query: str, place: str) -> None:
    it = parser.parse(query)
    assert it.place is not None and it.place.name == place and it.outside_place is None


def test_a_parcel_of_land_is_mapping_and_a_parcel_to_send_is_delivery(parser: QueryParser) -> None:
    assert parser.parse("the wooded parcel behind the house").category == "mapping_surveying"
    assert parser.parse("a parcel to send across town").category == "delivery"


def test_a_word_after_a_determiner_is_no_typo_of_a_place(parser: QueryParser) -> None:
    it = parser.parse("a thermal look at our attic insulation")
    assert it.place is None and it.outside_place is None
    assert parser.parse("gutters in Attic").place is not None  # said as where, a typo of Attica still is


def test_a_place_said_as_a_landmark_gives_way_to_the_place_meant(parser: QueryParser) -> None:
    it = parser.parse("we're just west of Ann Arbor, in Dexter")
    assert it.place is not None and it.place.name == "Dexter"
    assert parser.parse("the farm is south of Lapeer").place.name == "Lapeer"  # type: ignore[union-attr]
    # a place outside the area is the one meant when the one inside is the landmark
    sarnia = parser.parse("his house is in sarnia just across the bridge from port huron")
    assert sarnia.place is None and sarnia.outside_place is not None and sarnia.outside_place.name.startswith("Sarnia")
    huron = parser.parse("in port huron, across the bridge from sarnia")
    assert huron.place is not None and huron.place.name == "Port Huron"


def test_results_handed_over_or_damage_done_by_them_name_no_service(parser: QueryParser) -> None:
    for query in ("what file formats do they deliver", "how fast do they deliver the photos",
                  "what happens if they damage something", "what if the drone crashes into my car"):
        assert parser.parse(query).category is None, query
    assert parser.parse("can you deliver insulin to my mom").category == "delivery"
    assert parser.parse("how long to deliver?").category is None  # the job's results
    assert parser.parse("how fast can you deliver insulin to algonac").category == "delivery"
    assert parser.parse("i'd crash it. just the delivery service please").categories == ["delivery"]


def test_loose_names_for_a_place_and_a_map_customers_use(parser: QueryParser) -> None:
    it = parser.parse("a small machine shop near metro airport, parts flown to our other plant")
    assert it.place is not None and it.place.name == "Romulus"
    assert parser.parse("aerial map of our 60 acre farm, the stitched together kind").category == "mapping_surveying"
    assert parser.parse("hail damaged my roof").category == "inspection"


def test_a_time_already_past_asks_for_no_feature(parser: QueryParser) -> None:
    assert "night_ops" not in parser.parse("the siding got torn up the other night, Canton").features
    assert "weekend_availability" not in parser.parse("hail hit the garage this past weekend").features
    assert "night_ops" in parser.parse("a search tonight or tomorrow night").features  # still a time to fly


@pytest.mark.parametrize(
    ("query", "price"),
    [("gutter check, nothing over $90", 90.0), ("ortho map, none above 1,200 please", 1200.0),
     ("over 20 years in business, inspection", None),
     # what they will spend, or raise the cap to
     ("i got about 900 to spend on the whole thing", 900.0), ("we have 2k to work with", 2000.0),
     ("looking to spend about 500 on photos", 500.0),
     ("if its around 30 a drop thats fine, any more and its cheaper to just drive it", 30.0),
     ("300 is ok, nothing more", 300.0),
     ("ok so nobody decent at that price huh. i can stretch to 800", 800.0), ("we could go up to 1200", 1200.0),
     ("undr 200 if posible", 200.0), ("up to 5 hours of filming", None),
     ("spend 3 hours filming the show", None), ("i spend 40 hours a week at work", None),  # time, not money
     ("insulin has to stay under 46 degrees", None)],  # a temperature
)
def test_a_cap_said_as_what_is_out_or_what_they_will_spend(parser: QueryParser, query: str,
                                                            price: float | None) -> None:
    assert parser.parse(query).max_price == price


def test_streaming_said_as_a_verb_asks_for_live_stream(parser: QueryParser) -> None:
    assert "live_stream" in parser.parse("could you stream the regatta live for the families").features
    assert "live_stream" in parser.parse("graduation flyover streamed to youtube").features
    assert "live_stream" not in parser.parse("map the stream to the north of the barn").features


def test_a_loose_word_inside_a_longer_feature_phrase_names_no_service(parser: QueryParser) -> None:
    it = parser.parse("there is nowhere to land by the pole barn, it has to be dropped")
    assert it.category is None and "payload_drop" in it.features
    assert parser.parse("map my land").category == "mapping_surveying"  # alone, still the loose word


def test_an_ask_inside_a_clause_about_us_is_the_ask_not_the_scene(parser: QueryParser) -> None:
    it = parser.parse("what they want from us now is a time-lapse of the build")
    assert it.category == "construction" and it.categories == ["construction"]


def test_a_service_already_done_is_not_asked_for(parser: QueryParser) -> None:
    it = parser.parse("the roof inspection was already handled, we need gutter pictures for the adjuster")
    assert "roof" not in it.text.split()
    it = parser.parse("mapping is complete, now crop spraying")
    assert it.categories == ["agriculture"]


def test_where_something_is_carried_is_scenery(parser: QueryParser) -> None:
    it = parser.parse("a pump part flown out to a farm north of town")
    assert it.category == "delivery" and it.categories == ["delivery"]


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("grandpa walked off from the nursing home an hour ago", "public_safety"),
        ("my neighbor has alzheimers and is not home", "public_safety"),
        ("we're listing our cabin in august, need aerials", "real_estate"),
        ("some dusk photos of the house with the porch lit", "real_estate"),
        ("our water bill tripled, no idea why", "thermal_imaging"),
        ("the sewer line out back might be leaking", "thermal_imaging"),
        ("bring insulin out to my aunt", "delivery"),
    ],
)
def test_services_said_by_their_situation(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("the cat slipped out last week and she hides in the barn, thermal drone?", {"search", "missing", "pets"}),
        ("a thermal look, the slab must be leaking under the kitchen", {"pipe", "detection"}),
        ("someone to tell me how much gravel we have in the stockpiles", {"volume", "calculations"}),
    ],
)
def test_a_service_said_by_its_situation_is_searched_by_its_name(parser: QueryParser, query: str,
                                                                 words: set[str]) -> None:
    assert words <= set(parser.parse(query).text.split())


def test_a_situation_adds_nothing_outside_the_categories_asked_or_when_turned_down(parser: QueryParser) -> None:
    assert "volume" not in parser.parse("wedding video by the gravel pile").text.split()
    assert "detection" not in parser.parse("thermal scan of the attic, no leaking pipes").text.split()
    assert parser.parse("roof inspection").text == "roof inspection"  # a service said by its name: as said


def test_credentials_said_with_commercial_are_not_searched(parser: QueryParser) -> None:
    it = parser.parse("aerial video of the ceremony, the pilot has to be certified to fly commercially")
    assert it.category == "videography" and "commercial" not in it.text and "commercially" not in it.text
    assert "commercial" in parser.parse("a commercial shoot for our gym").text.split()  # the service, searched
    assert parser.parse("how would I get my commercial drone license").category == "training"


def test_liability_coverage_asks_for_an_insured_operator(parser: QueryParser) -> None:
    assert parser.parse("chimney check, they must carry general liability").insured is True
    assert parser.parse("gutters, with liability coverage").insured is True
    assert parser.parse("a liability waiver for the event").insured is None


def test_a_crop_to_spray_is_crop_spraying_and_fruit_is_orchard_spraying(parser: QueryParser) -> None:
    assert "crop" in parser.parse("wheat needs fungicide sprayed, 60 acres").text.split()
    assert "orchard" in parser.parse("spraying the cherries this week").text.split()


@pytest.mark.parametrize(
    ("query", "category", "word"),
    [
        ("gutter cleaning check, my gutetrs overflow", "inspection", None),  # a service named: nothing corrected
        ("can somebody look at my chimeny", "inspection", "chimney"),
        ("a vidoe of the ribbon cutting", "videography", "video"),
        ("a photograhper for the reunion", "aerial_photography", "photographer"),
        ("drone delivary to the marina", "delivery", "delivery"),
    ],
)
def test_a_typo_of_a_service_word_is_read_when_nothing_else_names_a_service(
    parser: QueryParser, query: str, category: str, word: str | None
) -> None:
    it = parser.parse(query)
    assert it.category == category
    assert word is None or word in it.text.split()


def test_a_word_of_its_own_is_no_typo_of_a_service_word(parser: QueryParser) -> None:
    for query in ("a party at our place", "what model is best", "hello there"):
        it = parser.parse(query)
        assert it.category is None and it.text.split() == query.split()


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("the upstairs keeps losing heat and we get ice dams", "thermal_imaging"),
        ("how many deer bed down on the back forty", "thermal_imaging"),
        ("fertilizer on the winter wheat by drone", "agriculture"),
    ],
)
def test_more_services_said_by_their_situation(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "category", "word"),
    [
        ("the creek keeps rising toward the houses, may need to evacuate", "public_safety", "flood"),
        ("help deciding where to build the pole barn on our land", "construction", "planning"),
        ("we want to fly our own surveys, which software should we learn", "training", "software"),
        ("a look at the wind turbine on the farm", "inspection", None),
        ("runoff from the neighbor's lot is eroding our yard, need a map", "mapping_surveying", "drainage"),
    ],
)
def test_situations_for_safety_planning_training_and_drainage(parser: QueryParser, query: str, category: str,
                                                              word: str | None) -> None:
    it = parser.parse(query)
    assert it.category == category
    assert word is None or word in it.text.split()


def test_a_question_to_the_operator_about_their_software_asks_for_no_training(parser: QueryParser) -> None:
    assert parser.parse("which software do they use for the topo map").category == "mapping_surveying"


def test_a_bonded_roofer_is_an_insured_inspection(parser: QueryParser) -> None:
    it = parser.parse("licensed and bonded roofer to check the flashing")
    assert it.category == "inspection" and it.insured is True


@pytest.mark.parametrize(
    ("query", "service"),
    [
        ("can you bring grandpa's meds over this afternoon", "prescription delivery"),
        ("the hailstorm tore up the siding and roof", "storm damage assessment"),
        ("our fence line is off, where do we actually end", "property boundary mapping"),
        ("a slope and elevation map before we pour the foundation", "topographic mapping"),
        ("studying for the faa exam, any tutors", "part 107 test prep"),
        ("aerial shots at our anniversary party", "event photography"),
        ("a collision on the interstate, the troopers need it mapped", "accident reconstruction"),
        ("my kayak capsized and my buddy is still out there", "search and rescue"),
        ("broadcast seed over the burned acres", "cover crop seeding"),
        ("the breaker panel smells hot, thermal scan", "electrical hot spots"),
    ],
)
def test_the_service_a_situation_names_is_read(parser: QueryParser, query: str, service: str) -> None:
    it = parser.parse(query)
    assert service in named_services(it.text, it.categories)


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("I'm a home builder, and my buyer wants the gutters looked at", "inspection"),
        ("we're a landscaping crew that needs to get trained on drones", "training"),
        ("rust on the water tower legs", "inspection"),
    ],
)
def test_who_the_customer_is_said_contracted_is_the_scene(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


def test_a_service_said_as_how_it_is_done_is_still_asked(parser: QueryParser) -> None:
    assert parser.parse("can a chimney inspection be done by drone in Troy").category == "inspection"
    assert parser.parse("the roof inspection was done already, now gutters").text.split()[:1] != ["roof"]


@pytest.mark.parametrize(
    "query",
    ["gutter check, and the pilot has to have an faa license", "a part 107 certified operator for the topo map",
     "whoever comes must hold a current part 107 certificate, chimney inspection"],
)
def test_a_credential_asked_of_the_operator_asks_for_no_training(parser: QueryParser, query: str) -> None:
    it = parser.parse(query)
    assert it.category is not None and "training" not in it.categories
    assert "license" not in it.text and "certificate" not in it.text


@pytest.mark.parametrize(
    "query",
    ["how do I get my faa license", "I need a part 107 license", "we want to become part 107 certified",
     "part 107 certification course near Troy"],
)
def test_a_credential_for_oneself_is_training(parser: QueryParser, query: str) -> None:
    assert parser.parse(query).category == "training"


def test_a_license_and_insurance_asks_for_an_insured_operator(parser: QueryParser) -> None:
    assert parser.parse("bridge inspection, they need a license and insurance").insured is True


def test_a_skill_taught_is_training(parser: QueryParser) -> None:
    it = parser.parse("someone to teach our deputies infrared")
    assert it.category == "training" and "thermal_camera" in it.features


@pytest.mark.parametrize(
    ("query", "category"),
    [("the gas line under the garage may be cracked", "thermal_imaging"),
     ("drone pictures every month of the progress on our new clinic", "construction")],
)
def test_buried_lines_and_progress_on_a_build(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


@pytest.mark.parametrize(
    ("query", "category", "service"),
    [
        # a pet gone, said as what happened
        ("the puppy slipped out of the yard in Wixom yesterday", "thermal_imaging", "search for missing pets"),
        ("we cannot find our cat since the storm", "thermal_imaging", "search for missing pets"),
        # a wreck to be recorded for a claim or a court
        ("our insurer wants the collision at the quarry photographed", "public_safety", "accident reconstruction"),
        ("two trucks in a pileup on the county road, the site needs documenting", "public_safety",
         "accident reconstruction"),
        # a map of how the plants are doing, whatever is mapped
        ("plant health scans of the blueberry rows", "agriculture", "ndvi crop health maps"),
        ("vigor maps for our wheat ground", "agriculture", "ndvi crop health maps"),
    ],
)
def test_situations_name_their_service(parser: QueryParser, query: str, category: str, service: str) -> None:
    it = parser.parse(query)
    assert it.category == category and service in named_services(it.text, it.categories)


def test_a_crash_course_is_a_class_not_a_wreck(parser: QueryParser) -> None:
    assert parser.parse("a crash course on flying before my part 107").category == "training"


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("my sister is getting married on a farm in Milford next June", "videography"),
        ("we want aerial coverage of the homecoming parade", "videography"),
        ("the insurer asked for overhead imagery after the fire", "aerial_photography"),
        ("rainwater always collects along the side of our garage", "mapping_surveying"),
        ("could somebody fly a gasket out to our crew at the quarry", "delivery"),
        ("please show my daughter how to fly, she wants to shoot real estate later", "training"),
        ("crowd control for the hockey tournament in Fraser", "public_safety"),
        ("event security at the soccer final", "public_safety"),
        ("drone pictures of the hockey tournament for the team's site", "aerial_photography"),
        ("the regatta this summer, filmed from the air", "videography"),
    ],
)
def test_needs_said_without_the_service_word(parser: QueryParser, query: str, category: str) -> None:
    assert parser.parse(query).category == category


def test_flying_the_drone_over_somewhere_is_no_delivery(parser: QueryParser) -> None:
    assert parser.parse("you can fly the drone over to the north field and map it").category == "mapping_surveying"


def test_pests_in_a_crop_ask_for_scouting(parser: QueryParser) -> None:
    it = parser.parse("something is eating the soybeans, beetles maybe, can a drone check the rows")
    assert it.category == "agriculture" and "crop scouting" in named_services(it.text, it.categories)


@pytest.mark.parametrize(
    ("query", "feature"),
    [
        ("the lot is all woods, it has to map the ground through the tree cover", "lidar"),
        ("is there a sprayer drone for hire out here", "spray_system"),
        ("can somebody get there in the next few hours", "same_day"),
        ("we want high resolution for the promo video", "4k_video"),
        ("the ceremony needs to go out live for relatives overseas", "live_stream"),
        ("grandma wants to watch it live on our facebook page", "live_stream"),
    ],
)
def test_more_features_in_customers_words(parser: QueryParser, query: str, feature: str) -> None:
    assert feature in parser.parse(query).features


def test_insurance_said_as_a_must(parser: QueryParser) -> None:
    assert parser.parse("insurance is mandatory for our school district").insured is True
    assert parser.parse("need pics of the hail damage for my insurance claim").insured is None


@pytest.mark.parametrize(("query", "place"), [
    ("gutter check, gp woods", "Grosse Pointe Woods"),
    ("chimney sweep inspection for a colonial in w bloomfield", "West Bloomfield"),
    ("facade work somewhere in the grosse pointes", "Grosse Pointe"),
])
def test_places_as_locals_shorten_them(parser: QueryParser, query: str, place: str) -> None:
    it = parser.parse(query)
    assert it.place is not None and it.place.name == place and not it.fuzzy_place


def test_a_chore_the_drone_spares_names_no_service(parser: QueryParser) -> None:
    # what the customer would rather not do themselves is no service they ask for
    it = parser.parse("I'd like a head count of the goats without walking the property lines each evening")
    assert it.category != "mapping_surveying" and "property boundary mapping" not in named_services(
        it.text, it.categories)


@pytest.mark.parametrize("query", [
    "the lifeguards want something that can drop a life vest to a kayaker who tipped over",
    "can it release a rope onto the ice for the guy who fell through",
])
def test_something_dropped_to_someone_asks_for_a_payload_drop(parser: QueryParser, query: str) -> None:
    assert "payload_drop" in parser.parse(query).features


@pytest.mark.parametrize("query", [
    "our solar output dropped a lot since spring",
    "can you drop off the parcel to my office",
    "drop a line to the operator for me",
])
def test_a_fall_or_a_drop_off_asks_for_no_payload_drop(parser: QueryParser, query: str) -> None:
    assert "payload_drop" not in parser.parse(query).features


@pytest.mark.parametrize("query", [
    "the ice rescue squad needs a drone up over the pond",
    "a kid is in the water off the beach, need a rescue drone now",
])
def test_who_is_in_the_water_is_search_and_rescue(parser: QueryParser, query: str) -> None:
    it = parser.parse(query)
    assert it.category == "public_safety" and "search and rescue" in named_services(it.text, it.categories)


def test_where_an_inspected_thing_sits_names_no_service(parser: QueryParser) -> None:
    # the antenna is inspected; the roof of the garage is only where it is
    it = parser.parse("need the cell antenna checked, the one on top of our detached garage roof")
    assert named_services(it.text, it.categories) == ["cell tower inspection"]
    # said as the thing looked at, the roof still names its inspection
    it = parser.parse("shingles came loose on the roof and the gutter is sagging")
    assert {"roof inspection", "gutter check"} <= set(named_services(it.text, it.categories))


@pytest.mark.parametrize("query", [
    "could somebody take a cooler of sandwiches over to my crew at the quarry",
    "need to get some bait out to my brother's sailboat",
])
def test_something_got_out_to_someone_is_a_delivery(parser: QueryParser, query: str) -> None:
    assert parser.parse(query).category == "delivery"


def test_getting_the_drone_somewhere_is_no_delivery(parser: QueryParser) -> None:
    assert parser.parse("can you get the drone out to the gravel pit to measure the piles").category != "delivery"


def test_nowhere_to_set_down_asks_for_a_payload_drop(parser: QueryParser) -> None:
    assert "payload_drop" in parser.parse("medicine to the cabin, no spot to set the thing down").features


@pytest.mark.parametrize(("query", "service"), [
    ("facade inspecton plus a quick look at the chimeny, this week", "chimney inspection"),
    ("need a weding video filmed by drone, reception after", "wedding videography"),
])
def test_a_typo_beside_a_named_service_is_read(parser: QueryParser, query: str, service: str) -> None:
    it = parser.parse(query)
    assert service in named_services(it.text, it.categories)


def test_a_typo_beside_a_named_service_is_read_only_as_that_kind_of_service(parser: QueryParser) -> None:
    # "contracts" is a word of its own, and "panels" only a plural: neither becomes another service's word
    it = parser.parse("courier some contracts and a few solar panels brochures across town")
    assert it.category == "delivery" and "contractor" not in it.text.split() and "panels" in it.text.split()


def test_animals_asked_of_thermal_imaging_name_the_count(parser: QueryParser) -> None:
    it = parser.parse("infrared flyover of the herd in the back forty")
    assert it.category == "thermal_imaging"
    assert "livestock and wildlife counts" in named_services(it.text, it.categories)


def test_where_rain_runs_is_drainage(parser: QueryParser) -> None:
    it = parser.parse("map how the rain runs off the driveway toward the garage")
    assert "drainage analysis" in named_services(it.text, it.categories)


def test_what_is_made_of_a_listing_is_real_estate(parser: QueryParser) -> None:
    assert parser.parse("need aerial footage for our new waterfront listing").category == "real_estate"
    assert parser.parse("drone footage of my daughter's recital").category != "real_estate"


@pytest.mark.parametrize("query", [
    "the drainage ditch keeps overflowing into our basement",
    "want to see where all the rainwater ends up on the property",
])
def test_where_water_goes_is_drainage_mapping(parser: QueryParser, query: str) -> None:
    it = parser.parse(query)
    assert it.category == "mapping_surveying" and "drainage analysis" in named_services(it.text, it.categories)


def test_loose_bricks_name_the_facade(parser: QueryParser) -> None:
    it = parser.parse("inspection of the old school, bricks crumbling near the top")
    assert "facade inspection" in named_services(it.text, it.categories)


def test_a_time_lapse_spelled_apart_is_construction(parser: QueryParser) -> None:
    it = parser.parse("want a time lapse of the warehouse build from start to finish")
    assert it.category == "construction" and "time-lapse" in named_services(it.text, it.categories)


@pytest.mark.parametrize("query", [
    "can a drone scout our barley for rust spots",
    "how is the alfalfa doing on the back forty, want it looked at from above",
])
def test_the_crop_itself_points_to_agriculture(parser: QueryParser, query: str) -> None:
    assert parser.parse(query).category == "agriculture"


def test_scouting_a_location_is_no_farming(parser: QueryParser) -> None:
    assert parser.parse("scouting locations for our music video shoot").category == "videography"


@pytest.mark.parametrize("query", [
    "could use help tracking down our old dog, he is deaf",
    "our kitten, he slipped out the back door this morning",
])
def test_a_pet_looked_for_is_a_missing_pet_search(parser: QueryParser, query: str) -> None:
    it = parser.parse(query)
    assert it.category == "thermal_imaging" and "search for missing pets" in named_services(it.text, it.categories)


@pytest.mark.parametrize(
    ("query", "place"),
    [
        # Each used to be read as another place: the nearest spelling (Whitmore Lake, Washtenaw, 25 miles off;
        # Grosse Pointe; Canton; Hartland) or, for New Boston, Boston, Massachusetts: an out-of-area refusal.
        ("roof inspection in White Lake", "White Lake"),
        ("drone delivery to Grosse Ile", "Grosse Ile"),
        ("mapping in washington township", "Washington Township"),
        ("survey in Highland Township", "Highland Township"),
        ("thermal scan of a barn in new boston", "New Boston"),
        ("crop spraying in huron township", "New Boston"),
        ("realtor photos in Lambertville", "Lambertville"),
    ],
)
def test_townships_of_the_area_are_themselves(parser: QueryParser, query: str, place: str) -> None:
    it = parser.parse(query)
    assert it.place is not None and it.place.name == place and it.fuzzy_place is False
    assert it.outside_place is None
    assert parser.parse("wedding photos in Highland Park").place.name == "Highland Park"  # type: ignore[union-attr]


def test_a_township_not_in_the_list_is_no_other_township(parser: QueryParser) -> None:
    """'Township' is shared by many names: a typo'd name must be close without it ("Scio Township" used to read
    as Ypsilanti Township, "Oceola Township" as Genoa Township); typos in the name or in 'township' still match."""
    for unknown in ("photos in Scio Township", "survey in Oceola Township", "delivery in Clay Township",
                    "spraying in Lodi Township"):
        assert parser.parse(unknown).place is None, unknown
    for typo, place in (("in Comerce Township", "Commerce Township"),
                        ("in Chesterfeld Township", "Chesterfield Township"),
                        ("in Hamburg Townshp", "Hamburg Township"), ("in Pittsfeld Township", "Pittsfield Township")):
        it = parser.parse(typo)
        assert it.place is not None and it.place.name == place, typo


@pytest.mark.parametrize("query", [
    "some aerial pix of the bakery for our marketing",  # "pix"/"pics" are photos, the business's own promotion
    "need promo pics of my storefront from above",
])
def test_photos_for_a_business_promotion_are_business_promo_photos(parser: QueryParser, query: str) -> None:
    it = parser.parse(query)
    assert it.category == "aerial_photography" and "business promo photos" in named_services(it.text, it.categories)


def test_the_drone_flown_somewhere_is_no_parcel(parser: QueryParser) -> None:
    assert parser.parse("fly the drone from my house to the park").category is None
