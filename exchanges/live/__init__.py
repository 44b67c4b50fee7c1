"""What the live venue adapters (MEXC, Gate.io) share: REST plumbing, the market-data
stream loop, order tracking, the symbol table and the frame of a live Venue."""
