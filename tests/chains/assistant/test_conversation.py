"""The conversation condensed into one search request: the newest turn wins field by field, a new category
starts a new topic, the assistant's turns are not read, small talk and chit-chat search nothing."""

from __future__ import annotations

import pytest

from chains.assistant.conversation import (
    asks_anew,
    asks_more,
    condense,
    is_small_talk,
    keeps_shown,
    returns_to,
    takes_back,
    wants_others,
)
from retrieval.places import load_gazetteer
from retrieval.query import QueryParser
from retrieval.vocab import named_services
from tests.conftest import make_settings

PARSER = QueryParser(load_gazetteer(make_settings().places_file))


def _it(*turns: str):  # type: ignore[no-untyped-def]
    return condense(list(turns), PARSER)


def test_place_joins_the_service_asked_for_earlier() -> None:
    r = _it("I need a roof inspection", "I'm in Livonia")
    assert r.interpreted is not None and r.interpreted.category == "inspection"
    assert r.interpreted.place is not None and r.interpreted.place.name == "Livonia"
    assert "roof" in r.interpreted.text and "im" not in r.interpreted.text.split()


def test_a_price_cap_and_an_order_refine_the_same_request() -> None:
    r = _it("mapping in Lapeer?", "cheaper ones, under $300?")
    it = r.interpreted
    assert it is not None and it.category == "mapping_surveying" and it.place and it.place.name == "Lapeer"
    assert it.max_price == 300 and r.order == "price"
    assert "cheaper" not in it.text.split()


def test_a_new_category_drops_the_old_cap_but_keeps_the_place() -> None:
    it = _it("roof inspection in Troy under $200 with thermal", "what about wedding videos?").interpreted
    assert it is not None and it.category == "videography" and it.place and it.place.name == "Troy"
    assert it.max_price is None and it.features == [] and "roof" not in it.text


def test_the_newest_place_wins_inside_or_outside_the_area() -> None:
    out = _it("roof inspection in Troy", "actually it's in Toledo").interpreted
    assert out is not None and out.place is None and out.outside_place is not None
    back = _it("wedding video in Chicago", "ok, what about Ann Arbor then").interpreted
    assert back is not None and back.outside_place is None and back.place and back.place.name == "Ann Arbor"


@pytest.mark.parametrize("text", ["hello", "Hi!", "thanks a lot", "ok great, bye"])
def test_small_talk_searches_nothing(text: str) -> None:
    assert is_small_talk(text)
    r = _it("roof inspection in Troy", text)
    assert r.interpreted is None and r.small_talk


@pytest.mark.parametrize("text", ["How do I list a drone for sale?", "What is SkyMarket?"])
def test_nothing_to_search_without_a_service_place_price_or_feature(text: str) -> None:
    r = _it(text)
    assert r.interpreted is None and not r.small_talk and not is_small_talk(text)


def test_a_follow_up_question_keeps_the_request() -> None:
    r = _it("thermal roof scan in Novi", "which one is the best rated?")
    assert r.interpreted is not None and r.interpreted.category == "thermal_imaging" and r.order == "rating"


def test_a_question_about_the_results_refines_without_switching_topic() -> None:
    it = _it("as-built documentation for a warehouse in Wixom", "do they use RTK for survey-grade accuracy?")
    assert it.interpreted is not None and it.interpreted.category == "construction"
    assert "rtk_gps" in it.interpreted.features


def test_a_place_alone_is_broad_but_words_are_searched() -> None:
    assert _it("What drone services can I book in Troy?").broad
    assert _it("Forget Troy, search Sterling Heights").broad  # steering words are no need
    worded = _it("someone to count my cows", "near Almont")
    assert not worded.broad and worded.interpreted is not None and "cows" in worded.interpreted.text


def test_one_turn_searches_what_search_itself_would() -> None:
    text = "pond water keeps pooling on my acreage near Hartland, can you map the drainage?"
    assert _it(text).interpreted.text == PARSER.parse(text).text  # type: ignore[union-attr]


def test_a_word_said_earlier_as_part_of_another_service_starts_no_new_topic() -> None:
    # "course" alone reads as training; here it is the golf course of the first turn
    it = _it("aerial shots of the fairways at our golf course", "oh, the course is the one out in Milford").interpreted
    assert it is not None and it.category == "aerial_photography" and it.place and it.place.name == "Milford"
    # a service named again after a switch is a switch back, not a reference
    back = _it("bridge inspection in Monroe", "hmm, a wedding film instead", "ok, back to the bridge inspection")
    assert back.interpreted is not None and back.interpreted.category == "inspection"


def test_a_service_turned_down_in_a_later_turn_gives_way_to_the_new_one() -> None:
    it = _it("wedding film in Saline this fall", "forget the wedding, my son wants flying lessons").interpreted
    assert it is not None and it.category == "training" and it.place and it.place.name == "Saline"
    assert "wedding" not in it.text.split()


def test_a_cap_said_in_words_or_as_a_refusal_refines_the_request() -> None:
    said = _it("topo map of a parcel near Howell", "we can't spend more than eighty per acre").interpreted
    assert said is not None and said.category == "mapping_surveying" and said.max_price == 80
    tops = _it("drone video of our band in Ferndale", "like 350 tops").interpreted
    assert tops is not None and tops.category == "videography" and tops.max_price == 350


def test_a_lake_in_a_later_turn_does_not_move_the_place() -> None:
    it = _it("snacks delivered to our boat, we're docked in Harrison Township",
             "we'll be out on lake st clair").interpreted
    assert it is not None and it.place is not None and it.place.name == "Harrison Township"


def test_near_me_is_no_small_talk_and_keeps_the_request() -> None:
    assert not is_small_talk("near me") and not is_small_talk("for me?")
    it = _it("topographic survey of my lot", "near me").interpreted
    assert it is not None and it.category == "mapping_surveying"


@pytest.mark.parametrize(
    "question",
    ["which of those carry liability insurance and use a thermal camera?",
     "ok, any of them insured with thermal?",
     "and which ones are insured and thermal"],
)
def test_which_of_those_asks_about_the_results(question: str) -> None:
    it = _it("chimney inspection in Berkley", question).interpreted
    assert it is not None and it.category == "inspection" and it.insured is True
    assert "thermal_camera" in it.features


def test_a_time_alone_asks_for_nothing_but_equipment_does() -> None:
    assert _it("anybody up flying tonight?").interpreted is None
    assert _it("sunny, perfect for flying today").interpreted is None
    it = _it("who has a lidar drone?").interpreted
    assert it is not None and "lidar" in it.features


@pytest.mark.parametrize(
    ("first", "where", "category"),
    [
        ("can somebody check my chimney", "the house is out on a farm by Armada", "inspection"),
        ("we want our vow renewal filmed", "it's at a little orchard outside Milford", "videography"),
        ("drone shots of our cottage please", "it's in Pinckney, sits on about 12 acres", "aerial_photography"),
    ],
)
def test_a_later_turn_that_says_where_keeps_the_service(first: str, where: str, category: str) -> None:
    it = _it(first, where).interpreted
    assert it is not None and it.category == category and it.place is not None


def test_a_service_asked_for_at_a_place_still_switches() -> None:
    it = _it("roof inspection in Troy", "actually we need crop spraying on our farm in Almont").interpreted
    assert it is not None and it.category == "agriculture" and it.place and it.place.name == "Almont"


def test_chatter_across_turns_is_not_searched() -> None:
    it = _it("need a chimney looked at", "oh sorry btw, we're located in Clawson, should've said").interpreted
    assert it is not None and it.place is not None and it.place.name == "Clawson"
    assert set(it.text.split()) == {"chimney", "looked"}


@pytest.mark.parametrize("question", ["do their pilots have infrared cameras?", "I'd want one with lidar on it"])
def test_equipment_asked_of_the_listings_shown_refines_them(question: str) -> None:
    it = _it("topographic survey of 30 acres near Milan", question).interpreted
    assert it is not None and it.category == "mapping_surveying" and it.features


def test_a_new_service_said_outright_still_switches_even_with_equipment_words() -> None:
    it = _it("wedding film in Novi", "actually I need thermal imaging of my house instead").interpreted
    assert it is not None and it.category == "thermal_imaging"


def test_a_question_about_the_results_names_a_place_far_away_in_passing() -> None:
    kept = _it("graduation party video in Utica", "can any of them stream it to my aunt in Arizona?").interpreted
    assert kept is not None and kept.outside_place is None and kept.place and kept.place.name == "Utica"
    asked = _it("graduation party video in Utica", "do they travel to Cleveland too?").interpreted
    assert asked is not None and asked.outside_place is not None


def test_a_cap_corrected_with_a_bare_number_replaces_the_old_one() -> None:
    it = _it("orthomosaic of the quarry in Oxford, under $900", "ugh, typo. more like six hundred").interpreted
    assert it is not None and it.max_price == 600
    kept = _it("orthomosaic of the quarry in Oxford, under $900", "make it 3 flights a month").interpreted
    assert kept is not None and kept.max_price == 900
    assert _it("mapping in Oxford under 3k", "sorry, meant 2k").interpreted.max_price == 2000  # type: ignore[union-attr]
    none = _it("orthomosaic of the quarry in Oxford", "I meant 600 acres").interpreted  # no cap to correct
    assert none is not None and none.max_price is None


def test_another_service_of_the_same_kind_instead_replaces_the_words_searched() -> None:
    it = _it("crop spraying near Capac", "hmm, let's start with scouting the fields instead").interpreted
    assert it is not None and it.category == "agriculture" and "spraying" not in it.text.split()
    kept = _it("crop spraying near Capac", "and scouting the fields too").interpreted
    assert kept is not None and "spraying" in kept.text.split()
    gone = _it("parts delivery in Warren", "nah, scratch the delivery, thermal scan of the breaker panels").interpreted
    assert gone is not None and gone.category == "thermal_imaging"


@pytest.mark.parametrize(
    ("first", "where", "category"),
    [
        ("a promo video for the band", "my cousin has an orchard near Romeo, we could do it there", "videography"),
        ("photos of the family reunion", "it moved to Saline, my in-laws own a farm out there", "aerial_photography"),
    ],
)
def test_someone_elses_place_named_later_keeps_the_service(first: str, where: str, category: str) -> None:
    it = _it(first, where).interpreted
    assert it is not None and it.category == category and it.place is not None


def test_a_relative_asking_for_a_service_still_switches() -> None:
    it = _it("wedding video in Howell", "oh and my dad needs his soybeans sprayed in Dexter").interpreted
    assert it is not None and it.category == "agriculture" and it.place and it.place.name == "Dexter"


@pytest.mark.parametrize(
    ("first", "later", "place"),
    [
        ("gutter check in Wyandotte", "we relocated from Cleveland last spring, no clue who to call", "Wyandotte"),
        ("aerial photos of the lake house in Algonac", "my sister in Toronto wants copies", "Algonac"),
        ("event video at the fairgrounds in Armada", "half the crowd drives in from Flint", "Armada"),
    ],
)
def test_an_outside_place_said_as_where_someone_comes_from_moves_nothing(first: str, later: str, place: str) -> None:
    it = _it(first, later).interpreted
    assert it is not None and it.outside_place is None and it.place is not None and it.place.name == place


def test_an_outside_place_said_as_where_the_job_is_still_moves_it() -> None:
    it = _it("gutter check in Wyandotte", "sorry, the rental is actually over in Toledo").interpreted
    assert it is not None and it.place is None and it.outside_place is not None
    kin = _it("gutter check in Wyandotte", "oh wait, it's for my dad in Toledo").interpreted
    assert kin is not None and kin.place is None and kin.outside_place is not None
    alone = _it("we moved here from Cleveland, need our gutters checked").interpreted
    assert alone is not None and alone.outside_place is None and alone.category == "inspection"



def test_equipment_asked_as_a_drone_with_it_refines_the_service() -> None:
    it = _it("search and rescue team near Holly", "ideally a drone with infrared").interpreted
    assert it is not None and it.category == "public_safety" and "thermal_camera" in it.features


def test_a_walk_through_asked_for_later_stays_real_estate() -> None:
    it = _it("listing photos for a condo in Novi", "also a video walkthrough of the rooms").interpreted
    assert it is not None and it.category == "real_estate"


def test_a_landmark_across_or_over_which_the_place_lies_names_no_service() -> None:
    it = _it("medical supplies flown to a clinic in Sarnia", "ok Port Huron then, just across the bridge").interpreted
    assert it is not None and it.category == "delivery" and it.place and it.place.name == "Port Huron"


@pytest.mark.parametrize(
    ("first", "question", "category"),
    [
        ("gutter check in Redford", "what about the 2nd one, could they email pictures to me", "inspection"),
        ("listing photos of a ranch in Milford", "is there one that can draw the lot lines on it", "real_estate"),
        ("drone classes near Dexter", "any that also do mapping?", "training"),
    ],
)
def test_a_question_about_one_of_the_results_keeps_the_service(first: str, question: str, category: str) -> None:
    it = _it(first, question).interpreted
    assert it is not None and it.category == category


def test_the_second_place_of_the_customer_is_no_question_about_the_results() -> None:
    it = _it("gutter check in Redford", "the second house is in Toledo though").interpreted
    assert it is not None and it.outside_place is not None


def test_a_cap_corrected_by_a_bare_number_or_taken_back() -> None:
    assert _it("orthomosaic in Saline under 400", "oops, 4000").interpreted.max_price == 4000  # type: ignore[union-attr]
    raised = _it("orthomosaic in Saline under 400", "we can go higher: 900").interpreted
    assert raised is not None and raised.max_price == 900
    gone = _it("orthomosaic in Saline under 400", "honestly the price isn't a concern")
    assert gone.interpreted is not None and gone.interpreted.max_price is None and gone.order == "relevance"
    for dropped in ("hmm ok forget the budget, i'd rather pay more for someone good", "scratch the price limit"):
        out = _it("roof check in royal oak, insured and under $200", dropped)  # not "on a budget": cheapest first
        assert out.interpreted is not None and out.interpreted.max_price is None and out.order == "relevance"
        assert out.interpreted.insured
    assert _it("roof inspection in troy", "im on a budget").order == "price"


def test_equipment_asked_later_refines_the_service_asked_first() -> None:
    it = _it("learning to fly, lessons near Wixom", "I'm into the fpv goggle stuff").interpreted
    assert it is not None and it.category == "training" and "fpv" in it.features
    it = _it("our teenager is missing near Milan", "need a pilot with an infrared camera").interpreted
    assert it is not None and it.category == "public_safety" and "thermal_camera" in it.features
    it = _it("a roof inspection in Troy", "no, thermal imaging instead").interpreted  # a swap is still one
    assert it is not None and it.category == "thermal_imaging"


def test_a_loose_word_later_starts_no_new_topic() -> None:
    it = _it("medical supplies to a clinic in Utica, under $40", "there's no land to set down on").interpreted
    assert it is not None and it.category == "delivery" and it.max_price == 40


def test_photos_or_video_later_are_the_medium_of_the_service_asked_first() -> None:
    it = _it("selling our condo in Novi", "can they shoot some 4k video too?").interpreted
    assert it is not None and it.category == "real_estate" and "4k_video" in it.features
    it = _it("weekly progress updates of the build in Troy", "drone photos are fine").interpreted
    assert it is not None and it.category == "construction"
    it = _it("roof inspection in Troy", "actually I want a wedding video").interpreted  # a real service: a new topic
    assert it is not None and it.category == "videography"
    it = _it("a topo map of the lot in Dexter, rtk please", "and some drone pictures of it").interpreted
    assert it is not None and it.category == "mapping_surveying" and it.features == ["rtk_gps"]
    it = _it("chimney check in Berkley", "no, aerial photos of the house instead").interpreted  # a swap
    assert it is not None and it.category == "aerial_photography"


def test_equipment_asked_before_any_service_holds_when_the_service_is_named() -> None:
    it = _it("need infrared and someone who flies after dark",
             "my uncle with dementia walked off near Holly").interpreted
    assert it is not None and it.category == "public_safety"
    assert {"thermal_camera", "night_ops"} <= set(it.features)
    it = _it("a thermal inspection of the roof in Troy, under 300", "what about wedding videos").interpreted
    assert it is not None and it.category == "videography" and it.features == [] and it.max_price is None


def test_two_loose_words_later_do_start_a_new_topic() -> None:
    it = _it("a gutter check in Troy", "and then pictures of the golf course too").interpreted
    assert it is not None and it.category == "aerial_photography"


def test_a_credential_asked_later_keeps_the_service() -> None:
    it = _it("solar panel inspection in Saline", "they must have their part 107 license").interpreted
    assert it is not None and it.category == "inspection" and "license" not in it.text


@pytest.mark.parametrize(
    "later",
    ["it has to be finished before the harvest starts on our fields",
     "they have to be careful flying around the power lines",
     "we also need someone who handles the paperwork for the township"],
)
def test_a_service_word_said_as_when_where_or_as_papers_keeps_the_service(later: str) -> None:
    it = _it("a gutter check in Troy, insured", later).interpreted
    assert it is not None and it.category == "inspection" and it.insured is True


def test_a_filler_word_that_names_a_service_with_the_others_is_searched() -> None:
    it = _it("grandma with alzheimers walked away from home in Holly, please help searching", "hurry").interpreted
    assert it is not None and {"searching", "rescue"} <= set(it.text.split())


@pytest.mark.parametrize(("turn", "order", "cap"), [
    ("drone photos of our storefront in Novi, our budget's around 150", "relevance", 150),
    ("a survey of the back forty in Milan, budget of $900", "relevance", 900),
    ("a videographer in Troy, we're on a tight budget", "price", None),
    ("what are the budget options for a roof inspection in Warren?", "price", None),
    ("boundary map of our land in Almont, budget maybe 1500 tops", "relevance", 1500),  # a number soon after it
    ("parts flown from Plymouth to Canton, around 30 a drop is fine, any more and its cheaper to drive", "relevance",
     30),  # cheaper than doing without: no cheaper listing asked for
])
def test_a_budget_with_a_number_is_a_cap_not_cheapest_first(turn: str, order: str, cap: float | None) -> None:
    r = _it(turn)
    assert r.interpreted is not None and r.order == order and r.interpreted.max_price == cap


@pytest.mark.parametrize("later", [
    "never mind the live stream, we'll just watch the video after",
    "the live stream isn't needed after all",
    "streaming it live doesn't matter, honestly",
])
def test_a_feature_taken_back_no_longer_holds(later: str) -> None:
    it = _it("film our lacrosse game in Novi and stream it live, on a saturday", later).interpreted
    assert it is not None and it.category == "videography"
    assert "live_stream" not in it.features and "weekend_availability" in it.features


def test_a_feature_said_again_without_taking_it_back_still_holds() -> None:
    it = _it("chimney inspection in Milan, needs to be on a weekend", "weekend is important to us").interpreted
    assert it is not None and it.features == ["weekend_availability"]


def test_photos_then_video_instead_keeps_the_subject() -> None:
    it = _it("aerial pictures of the sailing regatta off Marine City", "hmm, video instead?").interpreted
    assert it is not None and it.category == "videography" and it.categories == ["videography"]
    assert "regatta" in it.text.split() and it.place and it.place.name == "Marine City"


@pytest.mark.parametrize(("turn", "others"), [
    ("anyone with better reviews than those?", True),
    ("do you have somebody more experienced", True),
    ("any of them cheaper?", True),
    ("which of them has the best reviews?", False),
    ("which one is cheapest?", False),
    ("is the first one cheaper than the second?", False),  # two of them compared
    ("is the pontiac one closer than the troy one?", False),
])
def test_a_comparative_asks_for_other_listings(turn: str, others: bool) -> None:
    assert wants_others(turn) is others


def test_better_reviews_orders_by_rating() -> None:
    assert _it("fpv lessons in Troy", "anyone with better reviews than those?").order == "rating"


def test_a_refinement_that_describes_a_service_of_the_current_category_names_it() -> None:
    it = _it("drone pics for our condo listing in Canton", "could they shoot some video as well?").interpreted
    assert it is not None and it.category == "real_estate"
    assert "property video tour" in named_services(it.text, it.categories)
    kept = _it("drone pics for our condo listing in Canton", "no video though, on a weekend").interpreted
    assert kept is not None and "property video tour" not in named_services(kept.text, kept.categories)


def test_a_chore_the_customer_would_skip_starts_no_new_topic() -> None:
    # the sheep are the job; walking the property lines is what the drone spares them
    it = _it("we keep about 60 sheep on rented pasture", "I'd love to know where they all are without walking "
             "the property lines twice a day", "the farm is by Almont").interpreted
    assert it is not None and it.category == "agriculture" and it.place and it.place.name == "Almont"
    assert "livestock monitoring" in named_services(it.text, it.categories)


def test_where_the_inspected_thing_sits_is_no_second_service() -> None:
    it = _it("two of the solar modules up on the garage roof quit", "we're in Fenton Rd area of Holly",
             "anybody with infrared?").interpreted
    assert it is not None and it.category == "inspection" and "thermal_camera" in it.features
    assert named_services(it.text, it.categories) == ["solar panel inspection"]


@pytest.mark.parametrize(("turn", "talk"), [
    ("good night!", True),
    ("and at night", False),
    ("in the evening too", False),
])
def test_a_time_alone_is_no_goodbye(turn: str, talk: bool) -> None:
    assert is_small_talk(turn) is talk


def test_a_time_added_last_refines_the_request() -> None:
    it = _it("crowd overwatch for our street fair in Ferndale", "and at night").interpreted
    assert it is not None and it.category == "public_safety" and "night_ops" in it.features


def test_the_service_asked_for_turned_down_beside_another_swaps_it() -> None:
    # no "instead": turning the old service down is the switch ("video" alone would be a loose word)
    it = _it("shoot our graduation party on video in Livonia", "hmm, photos please, no video").interpreted
    assert it is not None and it.category == "aerial_photography" and it.place and it.place.name == "Livonia"


def test_a_word_turned_down_later_is_no_longer_searched() -> None:
    it = _it("parts delivery to our shop in Wixom", "not parts actually, some lab samples to the clinic").interpreted
    assert it is not None and it.category == "delivery" and "parts" not in it.text.split()
    assert "medical supplies" in named_services(it.text, it.categories)
    night = _it("real estate twilight shots at night in Novi", "skip the night part, daytime is ok").interpreted
    assert night is not None and "night" not in night.text.split() and "night_ops" not in night.features


def test_the_most_reviews_orders_by_rating() -> None:
    assert _it("drone photographer in Saline", "who has the most reviews?").order == "rating"


def test_a_cap_corrected_after_a_no_is_the_new_cap() -> None:
    it = _it("topo map of a lot in Milford", "keep it under 400", "no wait, 650").interpreted
    assert it is not None and it.max_price == 650


@pytest.mark.parametrize("turn", [
    "so do those folks carry liability coverage",  # a question whose subject is the listings shown
    "could either of them fly after sunset?",
    "is the Ferndale one any good",  # one of them, by its city
    "the 3rd one, what do they charge",  # one of them, by its place in the list
    "give me more details on that last outfit",
    "which of these has the lowest price",
    "how would we go about booking one of them",
    "u got ratings for them? any of those guys reviewed",
    "what's the difference between them?",  # a comparison of those shown
    "ok how do those compare",
])
def test_a_turn_about_the_listings_shown_keeps_them(turn: str) -> None:
    assert keeps_shown(turn) and not asks_anew(turn)


@pytest.mark.parametrize("turn", [
    "got any that carry insurance?",  # asks for listings: a new search
    "alright, look for ones with a thermal camera",
    "how about over in Wixom?",
    "hmm, any that are cheaper",
    "could you pull up different operators",
])
def test_a_turn_asking_for_listings_searches_again(turn: str) -> None:
    assert asks_anew(turn) and not keeps_shown(turn)


@pytest.mark.parametrize("turn", [
    "can it be done before noon?",  # it: the job, a need the search ranks by
    "i want one of those thermal drones",  # "those" names a thing, not the listings
    "we need the whole roof looked at",
])
def test_a_need_is_not_a_turn_about_the_listings_shown(turn: str) -> None:
    assert not keeps_shown(turn)


def test_other_options_asks_for_more_of_the_same_not_better() -> None:
    assert asks_more("anybody else around?") and asks_more("got other choices")
    for terse in ("others?", "any others?", "more?", "who else?", "ok any more?"):  # the whole turn
        assert asks_more(terse) and asks_anew(terse), terse
    assert not asks_more("tell me more") and not asks_more("what are the others like?")
    assert not asks_more("anyone with better reviews?")  # better by a measure: ordered anew (wants_others)


def test_a_service_said_with_the_camera_it_needs_is_a_new_topic() -> None:
    # "heat loss" asks for a heat camera, and names building heat loss: another service than the photos
    it = _it("drone photos for our house listing in Wixom",
             "oh and we'd like a check of where the heat loss is").interpreted
    assert it is not None and it.category == "thermal_imaging" and it.place and it.place.name == "Wixom"
    assert "building heat loss" in named_services(it.text, it.categories)
    gear = _it("drone photos for our house listing in Wixom", "can their drones see heat?").interpreted
    assert gear is not None and gear.category == "real_estate"  # gear asked of the listings shown


def test_a_second_need_said_as_such_is_a_new_topic_even_as_a_medium() -> None:
    first = "we're building a new office in novi and need monthly progress flyovers"
    # "a video" of a build could be construction's own medium; "one more thing" says it is another job
    it = _it(first, "thx. one more thing, the grand opening is in august and we want a video of it").interpreted
    assert it is not None and it.category == "videography" and it.place is not None and it.place.name == "Novi"
    kept = _it(first, "and a video of the progress too").interpreted  # the same job's medium
    assert kept is not None and kept.category == "construction"


@pytest.mark.parametrize(("before", "detour", "turn", "back"), [
    (["crop spraying on 80 acres near imlay city"],
     ["also my wife wants a video of the farm for our anniversary, any videographers out here?"],
     "ok but for the spraying, who's closest to me", True),  # its service named again
    (["event security by drone for a street festival in ferndale"], ["do any of u deliver food? like tacos"],
     "jk. ok the festival, we need someone who can fly at night", True),  # a word only the first need used
    (["event security by drone for a street festival in ferndale"], ["do any of u deliver food? like tacos"],
     "ok the tacos, any at night?", False),  # the detour's own word: still the detour
    (["roof inspection in troy"], ["real estate photos of the house too"], "what about video instead", False),
    (["roof inspection in troy"], ["real estate photos of the house too"], "the thing is, it's urgent", False),
])
def test_a_turn_goes_back_to_the_need_before_a_detour(before: list[str], detour: list[str], turn: str,
                                                      back: bool) -> None:
    assert returns_to(turn, before, detour, PARSER) is back


def test_sort_by_a_field_orders_by_it() -> None:
    assert _it("real estate photos in novi", "cheapest first", "sort by rating instead").order == "rating"
    assert _it("real estate photos in novi", "sort them by price").order == "price"


@pytest.mark.parametrize(("turns", "category"), [
    (["aerial photos of our lake house in white lake", "actually no, a video would be cooler",
      "hmm ok photos after all. just the print"], "aerial_photography"),  # settled back
    (["thermal roof scan in novi", "and regular roof ones same area"], "inspection"),  # the plain kind
    (["roof inspection in livonia", "also, do you guys do real estate photos?"], "real_estate"),  # asks us, anew
    (["water tower inspected in monroe county", "then a 3d model of the lot",
      "oh and someone to keep watch over the crowd at the fireworks"], "public_safety"),  # watched over: the job
])
def test_a_change_of_mind_said_loosely_switches_the_service(turns: list[str], category: str) -> None:
    it = _it(*turns).interpreted
    assert it is not None and it.category == category


def test_a_switch_inside_the_service_drops_the_old_jobs_gear_but_keeps_when() -> None:
    it = _it("crop spraying on 80 acres in lapeer, need it this weekend", "i'd rather just scout first").interpreted
    assert it is not None and it.category == "agriculture"
    assert "spray_system" not in it.features and "weekend_availability" in it.features


def test_a_second_need_said_while_i_have_you_switches_and_the_first_comes_back() -> None:
    turns = ["need a drone to survey our 10 acres in howell, we're splitting it into two lots",
             "oh and while i have you, my buddy lost his dog yesterday over in brighton, can a drone find a dog??"]
    dog = _it(*turns).interpreted
    assert dog is not None and dog.category == "thermal_imaging" and dog.place and dog.place.name == "Brighton"
    # the way back: the detour's turns leave the request (Steps._keep), its service named again
    assert returns_to("ok thx ill tell him. so back to my survey in howell, what do those run", turns[:1], turns[1:],
                      PARSER)


@pytest.mark.parametrize(("turn", "dropped"), [
    ("the energy guy said it just needs to be cold out not dark. so ok doesnt need to be at night", {"night_ops"}),
    ("update lol we might move it to a friday, so any day works actually. same budget",
     {"weekend_availability", "same_day"}),
    ("no rush on it", {"weekend_availability", "same_day"}),
    ("we need it at night", set()),
    ("ok it doesnt have to be insured i guess, neighbor used a guy who wasnt", {"insured"}),
])
def test_a_feature_taken_back_is_read(turn: str, dropped: set[str]) -> None:
    assert takes_back(turn) == dropped


def test_any_day_drops_the_day_asked_and_same_budget_keeps_the_cap_without_ordering() -> None:
    out = _it("wedding videographer in ann arbor, a saturday in june, budget around 800",
              "update lol we might move it to a friday, so any day works actually. same budget")
    assert out.interpreted is not None and out.interpreted.features == [] and out.interpreted.max_price == 800
    assert out.order == "relevance"


def test_insurance_taken_back_drops_the_filter_and_keeps_the_cap() -> None:
    out = _it("40 acres of soybeans sprayed near dundee, must be insured and under 30 an acre",
              "ok it doesnt have to be insured i guess. still under 30/acre tho").interpreted
    assert out is not None and not out.insured and out.max_price == 30
