"""catalogvlm: product understanding (taxonomy category, description, attributes) on Triton and Dynamo."""

__version__ = "0.1.0"
