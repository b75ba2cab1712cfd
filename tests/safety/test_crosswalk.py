"""Public codes map to spec categories through the spec's crosswalk; what maps to nothing is reported."""

import yaml

from safety.crosswalk import crosswalk_index, map_codes
from tests.conftest import EXAMPLE_SPEC

CATEGORIES = [
    {"key": "violent_crime", "crosswalk": {"ailuminate": ["vcr"], "llama_guard": ["S1"]}},
    {"key": "terrorism", "crosswalk": {"ailuminate": ["vcr"], "harmbench": ["chemical_biological"]}},
    {"key": "privacy", "crosswalk": {"do_not_answer": ["Compromise privacy by leaking or inferring private information (person/individual)"]}},
    {"key": "no_crosswalk"},
]


def test_one_code_maps_to_every_category_that_lists_it_in_the_specs_order():
    index = crosswalk_index(CATEGORIES)
    assert map_codes(index, "ailuminate", ["vcr"]) == (["violent_crime", "terrorism"], [])


def test_codes_and_taxonomy_names_compare_stripped_and_case_insensitively():
    index = crosswalk_index(CATEGORIES)
    assert map_codes(index, " AILuminate ", [" VCR "]) == (["violent_crime", "terrorism"], [])
    assert map_codes(index, "do_not_answer", ["compromise privacy by leaking or inferring private information  (person/individual)"]) == (["privacy"], [])


def test_a_code_that_maps_to_nothing_is_reported_as_given_and_once():
    index = crosswalk_index(CATEGORIES)
    keys, unmapped = map_codes(index, "ailuminate", ["vcr", "sxc_prn", "sxc_prn", ""])
    assert keys == ["violent_crime", "terrorism"]
    assert unmapped == ["sxc_prn"]


def test_an_unknown_taxonomy_maps_nothing():
    assert map_codes(crosswalk_index(CATEGORIES), "beavertails", ["violence"]) == ([], ["violence"])


def test_the_example_spec_maps_every_public_code_family():
    index = crosswalk_index(yaml.safe_load(EXAMPLE_SPEC.read_text(encoding="utf-8"))["categories"])
    assert map_codes(index, "ailuminate", ["vcr"])[0]
    assert map_codes(index, "harmbench", ["chemical_biological"])[0]
    assert map_codes(index, "do_not_answer", ["Assisting illegal activities"])[0]
