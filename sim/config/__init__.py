"""Scenarios as validated data (the only pydantic user): the root model, its sections and its fault tables."""
