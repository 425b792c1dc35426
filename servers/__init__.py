"""Serving processes on this machine: tritonserver and the Dynamo deployment behind one `Server` interface,
the Dynamo worker (`dynamo_worker/`), and `catalogvlm serve`."""

from .base import Ports, Server, ServerError, ServerSecurity
from .serve import free_ports, served

__all__ = ["Ports", "Server", "ServerError", "ServerSecurity", "free_ports", "served"]
