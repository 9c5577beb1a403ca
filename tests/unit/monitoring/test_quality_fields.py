"""Which stored fields the quality checks look for: those the served profile may lack."""

from fraudops.data.profiles import FDH, SPARKOV, ULB, DatasetProfile, GeoColumns, TimestampSpec
from fraudops.monitoring.quality import MODEL_FIELDS, model_fields


def test_sparkov_checks_its_optional_model_fields() -> None:
    """Sparkov keeps its list: gender, coordinates, city size, birth date."""
    assert MODEL_FIELDS == model_fields(SPARKOV)
    assert {"lat", "dob", "city_pop"} <= set(MODEL_FIELDS)


def test_fdh_and_ulb_have_nothing_that_may_be_missing() -> None:
    """Their request schemas require every column a model reads: no false 'missing' alarm."""
    assert ((), ()) == (model_fields(FDH), model_fields(ULB))


def test_a_profile_checks_its_optional_coordinates_and_birth_date() -> None:
    """Optional personal roles are stored under canonical names, and checked there."""
    profile = DatasetProfile(
        name="acquirer",
        timestamps=(TimestampSpec(column="ts", unit="datetime"),),
        amount="amount",
        birth_date="born",
        geo=GeoColumns(lat="a", long="b", merch_lat="c", merch_long="d"),
        optional=("born", "a", "b"),
    )
    assert ("dob", "lat", "long") == model_fields(profile)
