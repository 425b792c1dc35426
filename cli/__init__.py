"""The `catalogvlm` command: the top layer, which may import every other subpackage and none imports."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
