"""When labels are too thin for a meaningful AUPR, one plain sentence says so."""

from __future__ import annotations

from riotvit.thin import MIN_LOCATIONS, MIN_POSITIVES, assess_thin_data


def test_enough_positives_at_enough_places_is_not_thin():
    t = assess_thin_data(positives=40, crops=400, locations=25)
    assert not t.thin and t.reasons == ()
    assert t.sentence == "Enough data for AUPR: 40 positive crops of 400 at 25 distinct event locations."


def test_few_positives_are_thin():
    t = assess_thin_data(positives=MIN_POSITIVES - 1, crops=300, locations=30)
    assert t.thin and t.reasons == ("fewer than 20 positive crops",)
    assert t.sentence.startswith("Data too thin for a meaningful AUPR: 19 positive crops of 300 at 30 distinct event locations")
    assert t.sentence.endswith("read its metrics as a record, not as evidence that the model works or fails.")


def test_many_positives_at_few_points_are_thin():
    # Dhaka: ACLED puts hundreds of events on a handful of neighbourhood points
    t = assess_thin_data(positives=44, crops=173, locations=MIN_LOCATIONS - 1)
    assert t.thin and "fewer than 10 distinct event locations" in t.sentence
    assert t.to_dict()["thresholds"] == {"positives": 20, "locations": 10, "negatives": 20}


def test_few_negatives_and_unknown_locations():
    t = assess_thin_data(positives=30, crops=35)
    assert t.thin and t.locations is None and t.reasons == ("only 5 negative crops (need 20)",)
    assert "distinct event location" not in t.sentence
    assert assess_thin_data(1, 100, 1).sentence.startswith("Data too thin for a meaningful AUPR: 1 positive crop of 100 at 1 distinct event location (")
