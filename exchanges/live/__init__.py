"""What the live venue adapters (MEXC, Gate.io) share: REST plumbing, the market-data
stream loop, order tracking and the symbol table."""
