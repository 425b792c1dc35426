import shutil

import pytest

from catalogvlm.taxonomy import TaxonomyDataError, load_taxonomy

GID = "gid://shopify/TaxonomyCategory/"


def test_real_release_counts(taxonomy):
    assert len(taxonomy) == 10_595
    assert len(taxonomy.attributes) == 1_987
    assert taxonomy.value_count == 20_635
    assert len(taxonomy.verticals) == 26
    assert taxonomy.version.startswith("2025-08")


def test_every_category_round_trips_by_id_and_path(taxonomy):
    for category in taxonomy:
        assert taxonomy.get(category.id) is category
        assert taxonomy.get(category.short_id) is category
        assert taxonomy.by_full_name(category.full_name) is category


def test_tree_relations(taxonomy):
    leggings = taxonomy.category("aa-1-1-1-2")
    assert leggings.full_name == "Apparel & Accessories > Clothing > Activewear > Activewear Pants > Leggings"
    assert [a.short_id for a in taxonomy.ancestors(leggings)] == ["aa", "aa-1", "aa-1-1", "aa-1-1-1"]
    assert leggings.is_leaf and leggings.level == 4
    parent = taxonomy.parent(leggings)
    assert leggings in taxonomy.children(parent)
    assert not parent.is_leaf
    assert sum(c.is_leaf for c in taxonomy) == 8_516


def test_unknown_id_is_a_key_error(taxonomy):
    assert taxonomy.get("zz-9") is None
    with pytest.raises(KeyError, match="zz-9"):
        taxonomy.category("zz-9")


def test_attribute_menu_has_values(taxonomy):
    leggings = taxonomy.category("aa-1-1-1-2")
    menu = {a.handle: a for a in leggings.attributes}
    assert {"color", "fabric", "size", "target-gender"} <= set(menu)
    assert any(v.name == "Black" for v in menu["color"].values)


def test_extended_attribute_uses_base_values(taxonomy):
    diapers = next(c for c in taxonomy if any(a.handle == "diaper-features" for a in c.attributes))
    diaper_features = next(a for a in diapers.attributes if a.handle == "diaper-features")
    base = taxonomy.attributes[diaper_features.id]
    assert diaper_features.extended
    assert diaper_features.name == "Diaper features"
    assert base.handle == "absorbent-hygiene-product-features"
    assert diaper_features.values == base.values and len(base.values) > 5


def test_mini_taxonomy_extended_attribute(mini_taxonomy):
    diapers = mini_taxonomy.category("bt-1-1")
    features = diapers.attributes[1]
    assert (features.name, features.extended) == ("Diaper features", True)
    assert [v.name for v in features.values] == ["Leakproof", "Hypoallergenic"]


def test_google_crosswalk(taxonomy):
    google = taxonomy.google_category(taxonomy.category("aa"))
    assert google is not None and google.id == 166 and google.full_name == "Apparel & Accessories"


def test_missing_release_files_are_named(tmp_path):
    with pytest.raises(TaxonomyDataError, match=r"categories\.json, attributes\.json"):
        load_taxonomy(tmp_path)


def test_listing_that_disagrees_with_json_is_refused(tmp_path, mini_taxonomy):
    source = mini_taxonomy_dir()
    for name in ("categories.json", "attributes.json"):
        shutil.copy(source / name, tmp_path / name)
    (tmp_path / "categories.txt").write_text(f"{GID}bt : Baby and Toddler\n", encoding="utf-8")
    with pytest.raises(TaxonomyDataError, match="disagree"):
        load_taxonomy(tmp_path)


def test_malformed_json_is_a_data_error(tmp_path):
    (tmp_path / "categories.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "attributes.json").write_text('{"attributes": []}', encoding="utf-8")
    with pytest.raises(TaxonomyDataError, match=r"categories\.json"):
        load_taxonomy(tmp_path)


def mini_taxonomy_dir():
    from conftest import DATA

    return DATA / "mini_taxonomy"
