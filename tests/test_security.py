"""`serve --tls-cert/--tls-key/--tls-ca --admin-key --api-key` end to end: Triton's own gRPC TLS (mutual) and
restricted protocols, and the client's TLS and key options against them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from catalogvlm.client import CatalogError, Product, ProductClassifier
from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.contract import ADMIN_KEY_HEADER
from catalogvlm.servers import ServerSecurity, served

pytestmark = pytest.mark.server
API_KEY = "inference-key-for-tests"
ADMIN_KEY = "admin-key-for-tests"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=catalogvlm test CA",
             "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"))  # fmt: skip
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.csr"))  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA", str(folder / "ca.pem"),
                 "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", str(folder / f"{name}.ext"), "-out", str(folder / f"{name}.pem"))  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def secured(certificates, tmp_path_factory):
    security = ServerSecurity(
        certificates / "server.pem", certificates / "server.key", certificates / "ca.pem", ADMIN_KEY, API_KEY
    )
    with served("cpu", repository=tmp_path_factory.mktemp("secured") / "repository", security=security) as server:
        yield server


def _client(server, certificates: Path, **options) -> ProductClassifier:
    tls = {"ssl": True, "root_certificates": str(certificates / "ca.pem")}
    tls |= {"private_key": str(certificates / "client.key"), "certificate_chain": str(certificates / "client.pem")}
    return ProductClassifier(server.grpc_url, retries=0, timeout_s=30, **{**tls, **options})


def test_a_client_with_tls_its_certificate_and_the_key_is_served(secured, certificates):
    with _client(secured, certificates, api_key=API_KEY) as client:
        assert client.classify(Product(title="Ceramic Coffee Mug")).category.full_name


def test_inference_without_the_key_is_refused(secured, certificates):
    with _client(secured, certificates) as client, pytest.raises(CatalogError) as refused:
        client.classify(Product(title="Ceramic Coffee Mug"))
    assert refused.value.status in ("UNAVAILABLE", "PERMISSION_DENIED", "UNAUTHENTICATED")
    assert "api-key" in refused.value.message or "restricted" in refused.value.message.lower()


def test_a_client_without_tls_or_without_a_certificate_gets_nothing(secured, certificates):
    plain = ProductClassifier(secured.grpc_url, retries=0, timeout_s=5, api_key=API_KEY)
    with plain, pytest.raises(CatalogError):
        plain.classify(Product(title="Ceramic Coffee Mug"))
    one_way = _client(secured, certificates, api_key=API_KEY, private_key=None, certificate_chain=None)
    with one_way, pytest.raises(CatalogError):
        one_way.classify(Product(title="Ceramic Coffee Mug"))


def test_statistics_need_the_admin_key(secured, certificates):
    tls = {"ssl": True, "root_certificates": str(certificates / "ca.pem")}
    tls |= {"private_key": str(certificates / "client.key"), "certificate_chain": str(certificates / "client.pem")}
    with grpcclient.InferenceServerClient(secured.grpc_url, **tls) as client:
        with pytest.raises(InferenceServerException):
            client.get_inference_statistics("product_understanding")
        stats = client.get_inference_statistics("product_understanding", headers={ADMIN_KEY_HEADER: ADMIN_KEY})
        assert stats.model_stats[0].name == "product_understanding"
        assert client.is_server_ready()  # health stays open for load balancers and probes


def test_security_options_are_checked_before_anything_starts(tmp_path):
    with pytest.raises(ConfigurationError, match="go together"):
        ServerSecurity(tls_cert=tmp_path / "server.pem")
    with (
        pytest.raises(ConfigurationError, match="Dynamo"),
        served("cpu", backend="dynamo", security=ServerSecurity(api_key="k")),
    ):
        pass
