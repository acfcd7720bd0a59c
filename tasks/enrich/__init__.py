"""Enrichment and validation: language, sentiment and crisis terms of each mention, the Great
Expectations check of each batch, stories clustered from the loaded mentions, data quality."""
