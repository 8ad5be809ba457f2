"""The foundation every run stands on: the one seam to SimPy's scheduler, the run context, messages, the
ledger, named random streams, units, distributions and the error type."""
