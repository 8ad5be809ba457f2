"""One run: wiring a scenario into a model, running it, checking its guarantees and summarizing it."""
