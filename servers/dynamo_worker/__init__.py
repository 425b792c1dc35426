"""The Dynamo worker of catalogvlm: product_understanding and taxonomy_validate as tensor-based models."""
