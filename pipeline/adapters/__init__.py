"""Glue between the pipeline core and a serving runtime: tensors in, library calls, tensors out."""
