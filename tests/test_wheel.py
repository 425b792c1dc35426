"""The distribution as a service team installs it: a built wheel in a fresh virtualenv, base dependencies only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules that need an optional extra or a server's runtime, and the top-level module each lacks.
OPTIONAL = {
    "triton_python_backend_utils",  # inside tritonserver's Python backend only
    "dynamo",  # the `dynamo` extra
    "uvloop",  # the `dynamo` extra (the worker's event loop)
    "locust",  # the `tools` extra
    "sklearn",  # the `tools` extra (leave-stores-out folds and calibration in `catalogvlm eval`)
    "scipy",  # the `cpu` extra (the category tree's sparse matrix, imported on first use)
    "torch",  # the `cpu` extra (the MiniLM encoder, imported on first use)
    "apache_beam",  # the `bulk` extra (the Beam pipelines)
    "pyarrow",  # the `bulk` extra (Parquet)
}
# What the thin client must never pull in.
SERVER_SIDE = ("torch", "PIL", "rapidfuzz", "scipy", "catalogvlm.taxonomy", "catalogvlm.pipeline.images")

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys, time
    started = time.perf_counter()
    import catalogvlm.client
    client_s = time.perf_counter() - started
    pulled = sorted(m for m in sys.modules if m.startswith({server_side!r}))
    import catalogvlm
    missing = {{}}
    for info in pkgutil.walk_packages(catalogvlm.__path__, "catalogvlm."):
        if info.name.endswith("__main__"):  # runs a program when imported
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as error:
            missing[info.name] = error.name.split(".")[0]
    print(json.dumps({{"client_import_s": client_s, "pulled": pulled, "missing": missing}}))
    """
).format(server_side=SERVER_SIDE)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, a fresh virtualenv with it and its base dependencies)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".*_cache", "build", "*.egg-info", "__pycache__")
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root)]
    subprocess.run([*pip_wheel, str(source)], check=True, cwd=root)
    wheel = next(root.glob("catalogvlm-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    subprocess.run([str(root / "venv/bin/python"), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    return wheel, root / "venv"


def test_the_wheel_ships_every_module_model_file_and_data_file_of_the_checkout(installed):
    wheel, _ = installed
    shipped = set(zipfile.ZipFile(wheel).namelist())
    folders = [p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"]
    for folder in folders:
        package = "catalogvlm" if folder == "catalogvlm" else f"catalogvlm/{folder}"
        for source in (ROOT / folder).rglob("*"):
            wanted = source.suffix in (".py", ".tmpl", ".json", ".jsonl") or source.name == ".gitkeep"
            if wanted and source.is_file() and "__pycache__" not in source.parts:
                assert f"{package}/{source.relative_to(ROOT / folder)}" in shipped, source


def test_base_install_imports_the_client_cheaply_and_every_module_its_dependencies_allow(installed):
    _, venv = installed
    probe = subprocess.run([str(venv / "bin/python"), "-c", PROBE], check=True, capture_output=True, text=True, cwd="/")
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["pulled"] == [], "the client imported server-side modules"
    assert set(found["missing"].values()) <= OPTIONAL, found["missing"]
    assert not any(
        m.startswith(("catalogvlm.client", "catalogvlm.cli", "catalogvlm.builders")) for m in found["missing"]
    )
    assert found["client_import_s"] < 5


@pytest.mark.parametrize(("profile", "vlm"), [("cpu", "vlm"), ("gpu", "tensorrt_llm"), ("gpu-engine", "vlm")])
def test_render_repo_works_from_the_installed_wheel(installed, profile, vlm, taxonomy_path, tmp_path):
    _, venv = installed
    out = tmp_path / "repository"
    command = [str(venv / "bin/catalogvlm"), "render-repo", "--profile", profile, "--out", str(out)]
    subprocess.run([*command, "--taxonomy", str(taxonomy_path)], check=True, cwd="/", capture_output=True)
    rendered = {p.parent.name for p in out.glob("*/config.pbtxt")}
    assert {"product_understanding", "taxonomy_validate", vlm} <= rendered
    assert (out / "product_understanding/1/model.py").is_file()  # render-repo validated it, with the wheel's data
