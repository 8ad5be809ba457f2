"""Faults: the kinds a scenario can schedule and the injector that applies them."""
