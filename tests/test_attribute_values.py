import pytest

from catalogvlm.taxonomy.values import AttributeValidator


@pytest.fixture(scope="module")
def leggings(taxonomy):
    return taxonomy.category("aa-1-1-1-2")


def test_names_and_handles_in_any_case_are_kept(leggings):
    result = AttributeValidator().validate(leggings, {"Color": ["black", "color__red"], "FABRIC": "Cotton"})
    kept = {a.handle: [v.name for v in a.values] for a in result.attributes}
    assert kept == {"color": ["Black", "Red"], "fabric": ["Cotton"]}
    assert all(v.id.startswith("gid://shopify/TaxonomyValue/") for a in result.attributes for v in a.values)
    assert not result.dropped and not result.mapped


def test_near_misses_are_mapped_and_reported(leggings):
    result = AttributeValidator().validate(leggings, {"colour": ["Blak"]})
    assert [(a.handle, [v.name for v in a.values]) for a in result.attributes] == [("color", ["Black"])]
    assert [(m.given, m.value.name) for m in result.mapped] == [("Blak", "Black")]


def test_values_outside_the_list_are_dropped_with_reasons(leggings):
    result = AttributeValidator().validate(
        leggings, {"color": ["Black", "Unobtainium"], "Wheel size": ["29 in"], "size": [""]}
    )
    assert [v.name for v in result.attributes[0].values] == ["Black"]
    dropped = {(d.attribute, d.value): d.reason for d in result.dropped}
    assert "not a listed value of Color" in dropped[("color", "Unobtainium")]
    assert "has no attribute 'Wheel size'" in dropped[("Wheel size", "29 in")]
    assert ("size", "") in dropped


def test_every_kept_value_belongs_to_the_category_menu(taxonomy, leggings):
    proposed = {a.name: [v.name.upper() for v in a.values[:3]] for a in leggings.attributes}
    result = AttributeValidator().validate(leggings, proposed)
    menu = {a.id: {v.id for v in a.values} for a in leggings.attributes}
    assert result.attributes
    for attribute in result.attributes:
        assert {v.id for v in attribute.values} <= menu[attribute.id]


def test_duplicates_collapse_and_null_is_ignored(leggings):
    result = AttributeValidator().validate(leggings, {"color": ["Black", "black", "BLACK"], "pattern": None})
    assert [len(a.values) for a in result.attributes] == [1]
    assert not result.dropped


def test_extended_attribute_accepts_its_own_name(mini_taxonomy):
    diapers = mini_taxonomy.category("bt-1-1")
    result = AttributeValidator().validate(diapers, {"Diaper features": ["leakproof"]})
    assert [(a.handle, a.values[0].id) for a in result.attributes] == [
        ("diaper-features", "gid://shopify/TaxonomyValue/90")
    ]
