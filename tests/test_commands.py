"""`catalogvlm classify` and `catalogvlm serve` as users run them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import images
import pytest
import tritonclient.grpc as grpcclient

from catalogvlm.servers import free_ports

CLI = [sys.executable, "-m", "catalogvlm.cli"]
pytestmark = pytest.mark.server


def classify(*args, timeout=120):
    return subprocess.run([*CLI, "classify", *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_classify_one_product(grpc_url, tmp_path):
    image = tmp_path / "tee.jpg"
    image.write_bytes(images.product_photo((25, 35, 95)))
    done = classify("--url", grpc_url, "--title", "Cotton T-Shirt", "--product-type", "T-Shirt", "--image", str(image))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["title"] == "Cotton T-Shirt"
    assert result["category"]["full_name"].endswith("T-Shirts")
    assert {"simplified_description", "image_description", "attributes", "dropped_values", "retries"} <= set(result)


def test_classify_jsonl_and_csv_files(grpc_url, tmp_path):
    (tmp_path / "boots.png").write_bytes(images.product_photo((120, 75, 40), fmt="PNG"))
    jsonl = tmp_path / "products.jsonl"
    jsonl.write_text(
        json.dumps({"title": "Leather Hiking Boots", "image": "boots.png", "tags": ["outdoor", "men"]})
        + "\n"
        + json.dumps({"title": "Ceramic Coffee Mug", "description": "350 ml"})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    done = classify("--url", grpc_url, "--input", str(jsonl), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["title"] for line in out.read_text().splitlines()] == [
        "Leather Hiking Boots",
        "Ceramic Coffee Mug",
    ]
    csv_file = tmp_path / "products.csv"
    csv_file.write_text("title,description,vendor,product_type,tags,image\nWool Beanie,Warm hat,,Hat,winter,\n")
    done = classify("--url", grpc_url, "--input", str(csv_file))
    assert done.returncode == 0, done.stderr
    assert "Clothing Accessories > Hats" in json.loads(done.stdout)["category"]["full_name"]


def test_classify_input_writes_one_line_per_product_in_order_failures_included(grpc_url, tmp_path):
    rows = [{"title": "Ceramic Coffee Mug"}, {"title": ""}, {"title": "Wool Beanie", "image": "missing.jpg"},
            {"title": "Leather Hiking Boots"}]  # fmt: skip
    jsonl = tmp_path / "products.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    done = classify("--url", grpc_url, "--input", str(jsonl), "--output", str(out))
    assert done.returncode == 1  # some failed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["title"] for line in lines] == [row["title"] for row in rows]
    statuses = [line.get("error", {}).get("status") for line in lines]
    assert statuses == [None, "INVALID_ARGUMENT", "INVALID_ARGUMENT", None]
    assert "title: is empty" in lines[1]["error"]["message"] and "image: cannot read" in lines[2]["error"]["message"]
    assert "category" in lines[0] and "category" in lines[3]


def test_classify_error_exits_nonzero_with_server_message(grpc_url):
    done = classify("--url", grpc_url, "--title", "")
    assert done.returncode == 1
    assert "INVALID_ARGUMENT" in done.stderr and "title: is empty" in done.stderr
    assert done.stdout == ""


def test_classify_unreachable_server_is_reported():
    port = free_ports().grpc
    done = classify("--url", f"127.0.0.1:{port}", "--title", "Mug", "--timeout", "5")
    assert done.returncode == 1 and "UNAVAILABLE" in done.stderr


@pytest.mark.parametrize("backend", ["triton", "dynamo"])
def test_serve_starts_reports_ready_and_stops_on_sigterm(tmp_path, backend):
    ports = free_ports()
    command = [*CLI, "serve", "--backend", backend, "--repository", str(tmp_path / "repo"),
               "--grpc-port", str(ports.grpc), "--http-port", str(ports.http), "--metrics-port", str(ports.metrics),
               "--set", "bls_instances=1", "--set", "vlm_instances=1"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        ready_line = ""
        while time.monotonic() < deadline and "ready on gRPC" not in ready_line:
            ready_line = server.stderr.readline()
            assert ready_line or server.poll() is None, "serve exited before it was ready"
        assert f"127.0.0.1:{ports.grpc}" in ready_line
        with grpcclient.InferenceServerClient(f"127.0.0.1:{ports.grpc}") as client:
            assert client.is_model_ready("product_understanding")
            config = client.get_model_config("product_understanding", as_json=True)["config"]
            assert config["instance_group"][0]["count"] == 1
            assert config["input"][0]["name"] == "title"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    with grpcclient.InferenceServerClient(f"127.0.0.1:{ports.grpc}") as client, pytest.raises(Exception):  # noqa: B017
        client.is_server_live()


def test_a_server_that_cannot_start_is_one_line_and_an_exit_code(tmp_path):
    """The gRPC port is taken: tritonserver exits, and the command says so in one line, no traceback."""
    ports = free_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.grpc))
        taken.listen()
        command = [*CLI, "serve", "--repository", str(tmp_path / "repo"), "--grpc-port", str(ports.grpc),
                   "--http-port", str(ports.http), "--metrics-port", str(ports.metrics)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "catalogvlm: tritonserver exited with code" in done.stderr
    assert "Traceback" not in done.stderr
