"""English glosses of merchants' Spanish/French product words, and what they change for the CPU engine."""

from __future__ import annotations

import numpy as np

from catalogvlm.pipeline.cpu.attributes import mentioned_values
from catalogvlm.pipeline.cpu.categories import CategoryClassifier, ClassifierSettings
from catalogvlm.pipeline.cpu.embeddings import MODEL_NAME
from catalogvlm.pipeline.cpu.glossary import gloss, with_glosses


def test_foreign_product_words_get_english_glosses_in_order():
    assert gloss("Alambre Cobre Aislado THHN Verde") == "wire copper insulated"
    assert gloss("Alambre Cobre Aislado THHN Verde", descriptive=True) == "wire copper insulated green"
    assert gloss("Organizador de Pañales") == "organizer storage diaper"  # plural in -es, accent folded
    assert gloss("Bougie parfumée, coussin") == "candle cushion"
    assert gloss("Husa transparenta pentru iPhone") == "phone case cover"  # Romanian
    assert gloss("Fralda de pano e chupeta") == "diaper pacifier"  # Portuguese


def test_english_text_and_words_shared_with_english_get_none():
    # "pan" (bread), "collar" (necklace), "robe" (dress) mean something else in English: not in the table
    english = ("Cast iron frying pan", "Leather dog collar", "Waffle bath robe", "Sofa cover, USB cable",
               "Rock climbing shoes", "Garden hose 30 m", "Pull-up bar", "Lit candle")  # fmt: skip
    for title in english:
        assert gloss(title) == ""


def test_fields_keep_their_words_and_gain_glosses():
    fields = with_glosses({"title": "Chupete para bebé", "vendor": "Avent"})
    assert fields == {"title": "Chupete para bebé pacifier baby", "vendor": "Avent"}


def test_glosses_let_the_english_taxonomy_read_spanish(taxonomy):
    lexical = CategoryClassifier(taxonomy, None)
    title = {"title": "Chupete para bebé"}
    assert not lexical.classify(title)[0].full_name.startswith("Baby & Toddler")
    assert lexical.classify(with_glosses(title))[0].full_name.endswith("Pacifiers")


def test_spanish_colour_names_become_attribute_values():
    menu = [{"handle": "color", "values": ["Black", "Green", "Blue"]}]
    fields = with_glosses({"title": "Alambre THHN Verde"}, descriptive=True)
    assert mentioned_values(menu, fields) == {"color": ["Green"]}


def test_product_type_has_its_own_embedding_view(taxonomy):
    rows = {c.short_id: i for i, c in enumerate(taxonomy)}
    vectors = np.zeros((len(taxonomy), 384), dtype=np.float32)
    vectors[rows["fr-22"], 0] = 1.0  # the whole product's text points at Furniture > Tables
    vectors[rows["aa-6"], 1] = 1.0  # the product type alone points at Jewelry

    class TwoWayEncoder:
        def encode(self, texts):
            out = np.zeros((len(texts), 384), dtype=np.float32)
            for row, text in enumerate(texts):
                out[row, 1 if text == "zork" else 0] = 1.0
            return out

    product = {"title": "Gizmo 3000", "product_type": "zork"}
    for share, expected in ((0.3, "fr-22"), (0.8, "aa-6")):
        classifier = CategoryClassifier(
            taxonomy,
            {MODEL_NAME: vectors},
            {MODEL_NAME: TwoWayEncoder()},
            ClassifierSettings(product_type_weight=share),
        )
        assert classifier.classify(product)[0].short_id == expected
