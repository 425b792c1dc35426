"""Measuring classification quality on labelled products, the way the field does (hierarchical P/R/F1)."""
