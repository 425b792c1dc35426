"""Serve-time logic shared by the Triton models and the Dynamo worker.

The core (chain, prompts, parsing, images, engines) never imports a server; `adapters/` holds the thin
glue for each server (Triton's Python backend, Dynamo).
"""
