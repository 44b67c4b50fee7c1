"""The runtime: clocks, the engine and its context, risk, ledger, latency, records."""
