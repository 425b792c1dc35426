import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from catalogvlm.builders.repository import (
    MODEL_SOURCES,
    RenderError,
    ServedModel,
    parse_assignments,
    render_repository,
)


def test_cpu_profile_renders_parseable_configs(tmp_path, taxonomy_path):
    rendered = render_repository(
        "cpu", tmp_path, {"taxonomy_dir": str(taxonomy_path), "embeddings_dir": "/e", "bls_instances": "6"}
    )
    assert rendered.models == (
        "product_understanding", "taxonomy_validate", "category_candidates", "product_embeddings", "vlm",
    )  # fmt: skip
    for name in rendered.models:
        text = (tmp_path / name / "config.pbtxt").read_text()
        assert "${" not in text
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert config.name == name and config.backend == "python"
        assert (tmp_path / name / "1" / "model.py").is_file()
        assert not list((tmp_path / name).rglob("*.tmpl"))
    bls = text_format.Parse(
        (tmp_path / "product_understanding/config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    assert bls.instance_group[0].count == 6
    assert bls.parameters["taxonomy_dir"].string_value == str(taxonomy_path)
    assert bls.parameters["vlm_model_name"].string_value == "vlm"
    vlm = text_format.Parse((tmp_path / "vlm/config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    # the CPU engine learns whether the chain grounds its prompts, as the chain does
    assert vlm.parameters["candidates_top_k"].string_value == bls.parameters["candidates_top_k"].string_value != "0"


def test_missing_required_value_is_an_error(tmp_path):
    with pytest.raises(RenderError, match="needs a value for taxonomy_dir, embeddings_dir"):
        render_repository("cpu", tmp_path, {})


def test_unknown_key_is_an_error(tmp_path):
    with pytest.raises(RenderError, match=r"uses bls_instance$"):
        render_repository(
            "cpu",
            tmp_path,
            {"taxonomy_dir": "/t", "taxonomy_release": "2025-08", "embeddings_dir": "/e", "bls_instance": "8"},
        )


def test_placeholder_without_value_is_an_error(tmp_path):
    source = tmp_path / "src"
    (source / "1").mkdir(parents=True)
    (source / "config.pbtxt.tmpl").write_text('name: "${model_name}"\ninstance_group [ { count: ${copies} } ]\n')
    with pytest.raises(RenderError, match=r"broken/config\.pbtxt\.tmpl: no value for copies"):
        render_repository(
            "cpu",
            tmp_path / "out",
            {"taxonomy_dir": "/t", "taxonomy_release": "2025-08", "embeddings_dir": "/e"},
            (ServedModel("broken", source),),
        )


def test_per_model_values_override_profile_values(tmp_path):
    extra = ServedModel("pu_b", MODEL_SOURCES / "product_understanding", values={"vlm_model_name": "other_vlm"})
    render_repository(
        "cpu", tmp_path, {"taxonomy_dir": "/t", "taxonomy_release": "2025-08", "embeddings_dir": "/e"}, (extra,)
    )
    assert 'string_value: "other_vlm"' in (tmp_path / "pu_b/config.pbtxt").read_text()
    assert 'string_value: "vlm"' in (tmp_path / "product_understanding/config.pbtxt").read_text()


def test_unknown_profile_and_bad_assignment():
    with pytest.raises(RenderError, match="unknown profile 'tpu'"):
        render_repository("tpu", None, {})
    assert parse_assignments(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(RenderError, match="key=value"):
        parse_assignments(["novalue"])


def test_rendering_again_removes_models_of_an_earlier_render(tmp_path, taxonomy_path):
    values = {"taxonomy_dir": str(taxonomy_path)}
    render_repository("gpu", tmp_path, values)
    assert (tmp_path / "tensorrt_llm" / "config.pbtxt").is_file()
    (tmp_path / "notes").mkdir()  # not a model: left alone
    rendered = render_repository("cpu", tmp_path, {**values, "embeddings_dir": "/e"})
    assert sorted(p.parent.name for p in tmp_path.glob("*/config.pbtxt")) == sorted(rendered.models)
    assert (tmp_path / "notes").is_dir()
