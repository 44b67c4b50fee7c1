"""Gate.io Spot v4 protocol layer: signing, symbols, errors, WebSocket messages, book sync."""
