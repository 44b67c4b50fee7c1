"""MEXC Spot v3 protocol layer: signing, symbols, errors, protobuf frames, book sync."""
