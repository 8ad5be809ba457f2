"""Where a scenario's ``pattern`` comes from: a built-in, a plug-in file, or an installed entry point.

A scenario names its pattern in one of three ways, tried in this order:

- a built-in name (:data:`sim.patterns.PATTERNS`: ``queue``, ``pubsub`` ...);
- ``"path/to/file.py:ClassName"``: a class in a Python file, code the user chose to run. A relative path is
  taken from the scenario file's folder (:meth:`sim.config.scenario.Scenario.from_toml`) or, for a scenario
  built in Python, from the working directory; the scenario holds it as an absolute path;
- a name registered by an installed package in the ``sim.patterns`` entry-point group
  (``[project.entry-points."sim.patterns"] saga = "mypkg.saga:Saga"``).

Every user of a pattern resolves it here (scenario validation, build, the run, ``sim list patterns``,
config hashes, the engines), so a plug-in works wherever a built-in does. A plug-in class satisfies the
pattern protocol (:class:`sim.patterns.base.Pattern`): ``name`` (also the name of its scenario table),
``measures``, ``operation``, ``from_options`` (validates its table, raising
:class:`~sim.core.errors.SimError` naming the key) and ``install``.

A plug-in file is read, hashed (SHA-256 of its bytes: :func:`digest`) and executed once per content; editing
it gives a new module. The file is one module: what it imports is neither followed nor hashed. Workers of
the ``processes`` and ``dask`` engines do not need the file: the engine sends its text along
(:func:`sources`), and the worker runs exactly those bytes (:func:`provided`).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import linecache
import re
import sys
import traceback
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sim.core.errors import SimError, failure
from sim.patterns import PATTERNS
from sim.patterns.base import Measure, Operation, Pattern

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROTOCOL",
    "PatternSource",
    "PluginError",
    "absolute",
    "available",
    "describe",
    "digest",
    "is_file_ref",
    "pattern_class",
    "plugin_code",
    "plugin_failure",
    "plugin_file",
    "provided",
    "source",
    "sources",
]

ENTRY_POINT_GROUP = "sim.patterns"
PROTOCOL = ("name", "measures", "operation", "from_options", "install")
"""What a pattern class has (:class:`sim.patterns.base.Pattern`), in the order a plug-in error names it."""

_RESERVED = frozenset(
    {"pattern", "duration", "warmup", "drain", "seed", "trace", "topology", "links", "nodes", "workload"}
    | {"delivery", "network", "broker", "faults", "nemesis", "options", "params"}
)
"""Scenario keys a plug-in's ``name`` (its table's name) must not take."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PluginError(SimError):
    """A plug-in's own code failed (on import, validating its table, or during a run).

    The message is one line naming the scenario key (``pattern``, or the plug-in's table); ``frames`` are
    the traceback frames in the plug-in's file, innermost last, for the command line to show; the
    original exception is the ``__cause__`` where the error was raised from it.
    """

    def __init__(
        self, field: str, value: object, allowed: str, frames: list[traceback.FrameSummary] | None = None
    ) -> None:
        super().__init__(field, value, allowed)
        self.frames = list(frames or [])
        self.args = (field, value, allowed, self.frames)  # a copy rebuilt from them keeps the frames

    def at(self, prefix: str) -> PluginError:
        out = PluginError(
            f"{prefix}.{self.field}" if prefix else self.field, self.value, self.allowed, self.frames
        )
        out.__cause__ = self.__cause__
        return out

    def describe_frames(self, limit: int = 5) -> list[str]:
        """The plug-in's frames as ``File "...", line N, in f`` lines with their source, innermost last."""
        lines: list[str] = []
        for frame in self.frames[-limit:]:
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        return lines


@dataclass(frozen=True, slots=True)
class PatternSource:
    """Where a pattern comes from.

    Attributes
    ----------
    ref : str
        The scenario's value (``queue``, ``/abs/saga.py:Saga``, ``saga``).
    kind : str
        ``built-in``, ``file`` or ``entry point``.
    origin : str
        In words: ``built-in``, ``file <path>``, or ``entry point of <distribution> <version>``.
    path : str
        The file whose code the pattern is (a plug-in file, an entry point's module), else ``""``.
    """

    ref: str
    kind: str
    origin: str
    path: str = ""


# -- references ----------------------------------------------------------------------------------------------


def is_file_ref(ref: str) -> bool:
    """Whether ``ref`` names a class in a file (``path.py:Class``)."""
    path, sep, _ = ref.rpartition(":")
    return bool(sep) and path.endswith(".py")


def absolute(ref: Any, base: Path | None = None) -> Any:
    """``ref`` with a relative plug-in path made absolute against ``base`` (default: the working directory);
    anything else unchanged."""
    if not isinstance(ref, str) or not is_file_ref(ref):
        return ref
    path, _, name = ref.rpartition(":")
    where = Path(path).expanduser()
    if not where.is_absolute():
        where = (base or Path.cwd()) / where
    return f"{Path(_normal(where))}:{name}"


def _normal(path: Path) -> str:
    """An absolute path without ``..`` or ``.`` parts (links are not resolved: the path stays the user's)."""
    import os.path

    return os.path.normpath(str(path))


# -- loading -------------------------------------------------------------------------------------------------

_PROVIDED: dict[str, bytes] = {}
"""Plug-in file contents given by an engine's payload (:func:`provided`), by absolute path."""
_MODULES: dict[tuple[str, str, str], type[Pattern]] = {}
"""Loaded plug-in classes by (path, SHA-256 of the file's bytes, class name)."""
_ENTRY_CLASSES: dict[tuple[str, str], type[Pattern]] = {}


@contextlib.contextmanager
def provided(files: Mapping[str, bytes]) -> Iterator[None]:
    """While the block runs, plug-in files at these absolute paths read as the given bytes, not from disk.

    An engine's worker runs the bytes the sweep hashed (:func:`sources`), wherever it runs.
    """
    before = dict(_PROVIDED)
    _PROVIDED.update(files)
    try:
        yield
    finally:
        _PROVIDED.clear()
        _PROVIDED.update(before)


def _read(path: str, ref: str) -> bytes:
    data = _PROVIDED.get(path)
    if data is not None:
        return data
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SimError(
            "pattern",
            ref,
            f"a pattern: a built-in, an installed one or 'file.py:Class' ({path} does not exist)",
        ) from None
    except IsADirectoryError:
        raise SimError("pattern", ref, f"'file.py:Class' naming a Python file ({path} is a folder)") from None
    except OSError as exc:
        raise SimError(
            "pattern", ref, f"'file.py:Class' naming a readable file ({path}: {exc.strerror})"
        ) from None


def _from_file(ref: str) -> type[Pattern]:
    path, _, name = ref.rpartition(":")
    if not name.isidentifier():
        raise SimError("pattern", ref, "'file.py:ClassName' with a class name after the colon")
    data = _read(path, ref)
    key = (path, hashlib.sha256(data).hexdigest(), name)
    cls = _MODULES.get(key)
    if cls is None:
        module = _execute(path, data, key[1], ref)
        found = getattr(module, name, None)
        if found is None:
            defined = sorted(
                k for k, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__
            )
            shown = ", ".join(defined) or "none"
            raise SimError(
                "pattern", ref, f"a class {name} in {Path(path).name} (classes defined there: {shown})"
            )
        cls = _MODULES[key] = _checked(found, ref)
    return cls


def _execute(path: str, data: bytes, digest: str, ref: str) -> types.ModuleType:
    """Run a plug-in file as a module of its own (its tracebacks show the file and its lines)."""
    stem = re.sub(r"\W", "_", Path(path).stem)
    module = types.ModuleType(f"sim_plugin_{stem}_{digest[:12]}")
    module.__file__ = path
    text = data.decode("utf-8-sig", errors="replace")
    linecache.cache[path] = (len(text), None, text.splitlines(keepends=True), path)  # frames show its lines
    try:
        code = compile(text, path, "exec")
    except SyntaxError as exc:
        raise SimError("pattern", ref, f"a file of valid Python ({exc.msg}, line {exc.lineno})") from None
    sys.modules[module.__name__] = module  # dataclasses and pickling look a class's module up
    folder = str(Path(path).parent)
    sys.path.insert(0, folder)  # as ``python file.py`` would: the file's neighbours import
    try:
        exec(code, module.__dict__)  # code the user chose to run, named in the scenario
    except BaseException as exc:
        del sys.modules[module.__name__]
        if isinstance(exc, KeyboardInterrupt):
            raise
        error = PluginError(
            "pattern", ref, f"a file that imports cleanly ({failure(exc)})", _frames(exc, {path})
        )
        raise error from exc
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


_SCANNED: dict[tuple[str, ...], list[metadata.EntryPoint]] = {}


def _entry_points() -> list[metadata.EntryPoint]:
    """The ``sim.patterns`` entry points of the installed distributions, scanned once per import path (a
    scan reads every distribution's metadata: some 20 ms, too long to repeat for each scenario)."""
    where = tuple(sys.path)
    found = _SCANNED.get(where)
    if found is None:
        found = _SCANNED[where] = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    return found


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "entry point"
    return f"entry point of {dist.name} {dist.version}"


def _from_entry_point(ref: str) -> type[Pattern] | None:
    found = [ep for ep in _entry_points() if ep.name == ref]
    if not found:
        return None
    ep = found[0]
    key = (ref, ep.value)
    cls = _ENTRY_CLASSES.get(key)
    if cls is None:
        try:
            loaded = ep.load()
        except Exception as exc:  # an installed package's import may fail in any way
            raise PluginError(
                "pattern", ref, f"an entry point that loads ({ep.value}: {failure(exc)})", _frames(exc, None)
            ) from exc
        cls = _ENTRY_CLASSES[key] = _checked(loaded, ref)
    return cls


def _checked(cls: Any, ref: str) -> type[Pattern]:
    """``cls`` if it satisfies the pattern protocol; else SimError naming what is missing."""
    if not isinstance(cls, type):
        raise SimError("pattern", ref, f"a class (it names a {type(cls).__name__})")
    protocol = "the pattern protocol: " + ", ".join(PROTOCOL)
    missing = [attr for attr in PROTOCOL if not hasattr(cls, attr)]
    if missing:
        raise SimError(
            "pattern", ref, f"a class with {protocol} ({cls.__name__} has no {', '.join(missing)})"
        )
    for attr in ("from_options", "install"):
        if not callable(getattr(cls, attr)):
            raise SimError("pattern", ref, f"a class with {protocol} ({cls.__name__}.{attr} is not a method)")
    found: Any = cls
    name = found.name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SimError(
            "pattern", ref, f"a class whose name is an identifier ({cls.__name__}.name = {name!r})"
        )
    if name in PATTERNS or name in _RESERVED:
        raise SimError(
            "pattern",
            ref,
            f"a class whose name is not a built-in pattern or scenario key ({cls.__name__}.name = {name!r})",
        )
    measures = found.measures
    if not isinstance(measures, tuple) or not all(isinstance(m, Measure) for m in measures):
        raise SimError(
            "pattern", ref, f"a class whose measures are a tuple of Measure ({cls.__name__}.measures)"
        )
    if not isinstance(found.operation, Operation):
        raise SimError("pattern", ref, f"a class whose operation is an Operation ({cls.__name__}.operation)")
    return cls


def pattern_class(ref: str) -> type[Pattern]:
    """The class a scenario's ``pattern`` names (built-in, ``file.py:Class`` or entry point).

    Raises
    ------
    SimError
        Naming ``pattern``: no such pattern, a missing file or class, a class that misses part of the
        protocol (named), a file that is not Python. :class:`PluginError` when the plug-in's code raised
        on import.
    """
    cls = PATTERNS.get(ref)
    if cls is not None:
        return cls
    if not isinstance(ref, str) or not ref:
        raise SimError("pattern", ref, "a pattern name, or 'file.py:Class'")
    if is_file_ref(ref):
        return _from_file(str(absolute(ref)))
    if ref.endswith(".py"):
        raise SimError("pattern", ref, "'file.py:ClassName', naming the class after a colon")
    cls = _from_entry_point(ref)
    if cls is None:
        installed = sorted({ep.name for ep in _entry_points()} - set(PATTERNS))
        known = ", ".join(sorted(PATTERNS)) + (f"; installed: {', '.join(installed)}" if installed else "")
        raise SimError("pattern", ref, f"a built-in pattern ({known}), or 'file.py:Class'")
    return cls


# -- where from, and what to hash and ship ------------------------------------------------------------------


def source(ref: str) -> PatternSource:
    """Where the pattern ``ref`` comes from (it is loaded if it was not)."""
    cls = pattern_class(ref)
    if ref in PATTERNS:
        return PatternSource(ref, "built-in", "built-in")
    if is_file_ref(ref):
        path = absolute(ref).rpartition(":")[0]
        return PatternSource(ref, "file", f"file {path}", path)
    ep = next(ep for ep in _entry_points() if ep.name == ref)
    return PatternSource(ref, "entry point", _distribution(ep), _module_file(cls))


def _module_file(cls: type) -> str:
    try:
        return inspect.getsourcefile(cls) or ""
    except TypeError:  # a class without a source file (built in C, made at run time)
        return ""


def digest(ref: str) -> str:
    """``""`` for a built-in; else the SHA-256 of the plug-in's code as a run will execute it (the file's
    bytes; for an entry point, its module's file, or the distribution's version if it has no file)."""
    if ref in PATTERNS:
        return ""
    where = source(ref)
    if where.kind == "file":
        return hashlib.sha256(_read(where.path, ref)).hexdigest()
    if where.path:
        with contextlib.suppress(OSError):
            return hashlib.sha256(Path(where.path).read_bytes()).hexdigest()
    return where.origin


def plugin_file(ref: str) -> str:
    """The absolute path of the plug-in file ``ref`` names (``""`` for a built-in or an entry point); the
    file is not read."""
    if not isinstance(ref, str) or not is_file_ref(ref):
        return ""
    return str(absolute(ref).rpartition(":")[0])


def sources(ref: str) -> dict[str, bytes]:
    """The bytes of a plug-in file by its absolute path (``{}`` for a built-in or an entry point, which
    the workers import from their own installation): what an engine ships to its workers, and what a
    results folder keeps to replay a run. Bytes, not text: a file in any encoding its coding line names
    runs as it does in this process."""
    path = plugin_file(ref)
    return {path: _read(path, ref)} if path else {}


def available() -> list[tuple[str, PatternSource, str]]:
    """Every pattern found without a scenario: built-ins, then installed entry points, each with its
    source and a one-line description (for an entry point that cannot load, why)."""
    out = [
        (name, PatternSource(name, "built-in", "built-in"), describe(cls))
        for name, cls in sorted(PATTERNS.items())
    ]
    for ep in sorted(_entry_points(), key=lambda e: e.name):
        where = PatternSource(ep.name, "entry point", _distribution(ep))
        if ep.name in PATTERNS:
            out.append((ep.name, where, f"not used: the built-in '{ep.name}' takes the name ({ep.value})"))
            continue
        try:
            cls = pattern_class(ep.name)
        except SimError as exc:
            out.append((ep.name, where, f"cannot be used: {exc.allowed}"))
            continue
        out.append(
            (ep.name, PatternSource(ep.name, "entry point", where.origin, _module_file(cls)), describe(cls))
        )
    return out


def describe(cls: type) -> str:
    """The first line of a pattern class's docstring (``""`` without one)."""
    lines = (cls.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


# -- failures in a plug-in's code ---------------------------------------------------------------------------


def _frames(exc: BaseException, files: set[str] | None) -> list[traceback.FrameSummary]:
    """The frames in ``files`` (all of them when None) of ``exc``'s traceback and of the exceptions it was
    raised from, innermost last (SimPy raises a copy of a process's exception, from the original)."""
    chain: list[BaseException] = []
    at: BaseException | None = exc
    while at is not None and at not in chain:
        chain.append(at)
        at = at.__cause__ or at.__context__
    out: list[traceback.FrameSummary] = []
    for link in chain:
        out += [f for f in traceback.extract_tb(link.__traceback__) if files is None or f.filename in files]
    return out


def plugin_failure(ref: str, exc: BaseException) -> PluginError | None:
    """A :class:`PluginError` for ``exc`` if it passed through the plug-in's own code (a frame in its
    file), else None (the core's own failure, or a built-in pattern's)."""
    if ref in PATTERNS or isinstance(exc, PluginError) or not isinstance(exc, Exception):
        return None
    try:
        where = source(ref)
    except SimError:
        return None
    frames = _frames(exc, {where.path}) if where.path else []
    if not frames:
        return None
    last = frames[-1]
    text = f"{failure(exc)} at {Path(last.filename).name}:{last.lineno}, in {last.name}"
    return PluginError("pattern", ref, f"a pattern whose code runs without raising ({text})", frames)


@contextlib.contextmanager
def plugin_code(ref: str) -> Iterator[None]:
    """Around code that may run a plug-in's: an exception that passed through the plug-in's file becomes a
    :class:`PluginError` (from the original, its ``__cause__``); any other passes unchanged."""
    try:
        yield
    except Exception as exc:
        error = plugin_failure(ref, exc)
        if error is None:
            raise
        raise error from exc
