"""Serving processes on this machine: tritonserver and the Dynamo deployment behind one `Server` interface,
the Dynamo worker (`dynamo_worker/`), and `catalogvlm serve`."""

from .base import Ports, Server, ServerError
from .serve import free_ports, served

__all__ = ["Ports", "Server", "ServerError", "free_ports", "served"]
