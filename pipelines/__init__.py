"""Apache Beam pipelines: whole catalogs and streams of product updates through the server (`catalogvlm batch`)."""
