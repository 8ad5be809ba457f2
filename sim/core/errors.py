"""The one error type users see, and the one that marks a bug in the simulator itself."""

from __future__ import annotations

__all__ = ["InvariantError", "SimError", "failure", "one_line"]


class SimError(ValueError):
    """Bad input: a config value, topology, file or command-line argument that ``sim`` cannot use.

    The message always names the field, the value and what is allowed, in one line, e.g.
    ``links.loss = 1.5: expected a probability in [0, 1]``.

    Parameters
    ----------
    field : str
        Dotted name of the offending field (``"links.loss"``), file or argument.
    value : object
        The value that was given.
    allowed : str
        What would have been accepted.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = value if isinstance(value, str) and field.endswith(("file", "path")) else repr(value)
        self.message = f"{field} = {shown}: expected {allowed}"
        super().__init__(field, value, allowed)  # args rebuild it: pickling, SimPy's re-raise in a process

    def __str__(self) -> str:
        return self.message

    def at(self, prefix: str) -> SimError:
        """Return the same error with ``prefix.`` put in front of its field name."""
        return SimError(f"{prefix}.{self.field}" if prefix else self.field, self.value, self.allowed)


class InvariantError(AssertionError):
    """An accounting invariant failed at the end of a run: a bug in ``sim``, never the user's fault."""


def failure(exc: BaseException) -> str:
    """How a user's code failed, for a SimError's ``allowed`` text: ``it called sys.exit(3)``, ``it raised
    ValueError: ...``."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"it raised {type(exc).__name__}: {exc}"


def one_line(error: SimError) -> str:
    """The error's message on one line (a user's exception text, quoted in it, may span several)."""
    return " ".join(str(error).split())
