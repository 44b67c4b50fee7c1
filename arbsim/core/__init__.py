"""The domain: model, errors, the order book and the ports every venue implements."""
