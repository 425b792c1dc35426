"""Triton models in Triton's repository layout, shipped as package data (templates and thin model.py files)."""
