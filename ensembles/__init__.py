"""Triton ensembles in Triton's repository layout, shipped as package data."""
