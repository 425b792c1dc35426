"""Running the real `tritonserver` (2.51, Python backend) that ships inside the nvidia-pytriton wheel.

PyTriton's own wrapper is not used: we need a plain model repository, our own ports and flags, and the
Python backend stub running inside this virtualenv so that models import `catalogvlm`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from catalogvlm.settings import CACHE_ROOT

from .base import Ports, ServerError, ServerSecurity
from .health import expected_stubs, missing_stubs, repository_models, running_stubs

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class TritonServerConfig:
    repository: Path
    ports: Ports = field(default_factory=Ports)
    host: str = "127.0.0.1"
    log_verbose: int = 0
    python_thread_pool_size: int = 32  # Triton's default; see builders.repository.python_thread_pool_size
    security: ServerSecurity = field(default_factory=ServerSecurity)
    extra_args: tuple[str, ...] = ()

    def command(self, installation: TritonInstallation) -> list[str]:
        return [
            str(installation.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={installation.backends}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.ports.grpc}",
            f"--http-address={self.host}",
            f"--http-port={self.ports.http}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.ports.metrics}",
            "--allow-gpu-metrics=false",
            "--strict-readiness=true",
            "--exit-on-error=true",
            f"--log-verbose={self.log_verbose}",
            f"--backend-config=python,thread-pool-size={self.python_thread_pool_size}",
            *self.security.triton_args(),
            *self.extra_args,
        ]


@dataclass(frozen=True)
class TritonInstallation:
    """A runnable copy of the wheel's server: its binary, backends with our Python's stub, its libraries."""

    root: Path
    libraries: Path

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def backends(self) -> Path:
        return self.root / "backends"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The stub embeds whichever libpython3.X it finds. It must be this interpreter's own, or compiled
        # stdlib modules (_ssl, ...) built for this patch release fail with undefined symbols.
        paths = [_own_libpython_dir(), str(self.libraries), env.get("LD_LIBRARY_PATH")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, paths))
        # Triton scales a model with instances (one process each): one BLAS/OpenMP thread per instance keeps
        # instances x threads within the cores. An operator's own setting wins.
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(variable, "1")
        # The Python backend stub runs the first `python` environment it finds on PATH: make it this venv's.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env


def _own_libpython_dir() -> str | None:
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    return libdir if libdir and library and (Path(libdir) / library).exists() else None


def prepare_installation(cache_dir: Path | None = None) -> TritonInstallation:
    """Copy the wheel's server to a work folder (once) with the stub for the running Python version."""
    try:
        import pytriton
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ServerError("the Triton server needs `pip install nvidia-pytriton` (catalogvlm[server])") from error
    package = Path(pytriton.__file__).parent
    source = package / "tritonserver"
    libraries = package.parent / "nvidia_pytriton.libs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"nvidia-pytriton ships no Python backend stub for Python {version}")
    root = (cache_dir or CACHE_ROOT) / f"tritonserver-py{version}"
    if not (root / "backends" / "python" / stub.name).is_file():
        staging = root.with_suffix(".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns("python_backend_stubs", "__pycache__"))
        shutil.copy2(stub, staging / "backends" / "python" / stub.name)
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    return TritonInstallation(root, libraries)


class TritonServer:
    """A tritonserver child process: started, awaited until ready, stopped (idempotently)."""

    def __init__(self, config: TritonServerConfig, installation: TritonInstallation | None = None) -> None:
        self.config = config
        self._installation = installation or prepare_installation()
        self._process: subprocess.Popen[bytes] | None = None
        self._expected_stubs: Counter[str] = Counter()

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.config.ports.http}"

    @property
    def grpc_url(self) -> str:
        return self.config.ports.grpc_url(self.config.host)

    @property
    def metrics_url(self) -> str:
        return self.config.ports.metrics_url(self.config.host)

    def start(self, log_file: Path | None = None) -> None:
        command = self.config.command(self._installation)
        log.info("starting %s", " ".join(command))
        output = log_file.open("ab") if log_file else None
        self._process = subprocess.Popen(
            command,
            env=self._installation.environment(),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,  # our Ctrl-C is handled by us; the server gets an orderly SIGTERM
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Polls KServe's HTTP readiness endpoint, as Kubernetes does: open whatever gRPC's TLS and keys are."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self._process.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        models = repository_models(self.config.repository)
                        self._expected_stubs = expected_stubs(self.http_url, models, self.config.security.headers)
                        return
            except OSError:  # not listening yet, or 400 while models load
                pass
            time.sleep(0.25)
        raise ServerError(f"tritonserver was not ready after {timeout_s:.0f} s")

    @property
    def pids(self) -> tuple[int, ...]:
        return (self._process.pid,) if self._process else ()

    def failure(self) -> str | None:
        if self._process is None or self._process.poll() is not None:
            return f"tritonserver exited with code {self._process.returncode if self._process else None}"
        missing = missing_stubs(self._expected_stubs, running_stubs(self._process.pid))
        return "a model process died (" + "; ".join(missing) + ")" if missing else None

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("tritonserver did not stop in %.0f s; killing it", timeout_s)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
