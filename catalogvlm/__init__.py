"""catalogvlm: product understanding (taxonomy category, description, attributes) on Triton and Dynamo.

This package is the bottom layer: the version, the error family (`errors`) and where data lives
(`settings`). Every other subpackage may import it; it imports none of them.
"""

__version__ = "0.1.0"
