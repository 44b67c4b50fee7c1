"""Market data: the Parquet catalog, replay cursors, the synthetic generator, importers."""
