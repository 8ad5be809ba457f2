"""The ``sim`` command."""
