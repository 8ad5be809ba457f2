"""SimError: one line naming the field, the value and what is allowed, whichever way it travels."""

from __future__ import annotations

import pickle

import pytest

from sim.core.errors import SimError
from sim.core.scheduling import Scheduler


def test_the_message_names_the_field_the_value_and_what_is_allowed() -> None:
    exc = SimError("links.loss", 1.5, "a probability in [0, 1]")
    assert str(exc) == "links.loss = 1.5: expected a probability in [0, 1]"
    assert (exc.field, exc.value, exc.allowed) == ("links.loss", 1.5, "a probability in [0, 1]")


def test_it_survives_pickling_as_the_same_error() -> None:
    back = pickle.loads(pickle.dumps(SimError("links.loss", 1.5, "a probability in [0, 1]")))
    assert type(back) is SimError and str(back) == "links.loss = 1.5: expected a probability in [0, 1]"


def test_raised_in_a_simpy_process_it_reaches_the_caller_as_itself() -> None:
    # SimPy re-raises a process's exception as ``type(exc)(*exc.args)``: a SimError must rebuild from its args
    env = Scheduler()

    def process():  # type: ignore[no-untyped-def]
        yield env.timeout(1)
        raise SimError("process", "work", "a generator function (a def with yield)")

    env.process(process())
    with pytest.raises(SimError, match=r"^process = 'work': expected a generator function") as info:
        env.run()
    assert info.value.field == "process" and isinstance(info.value.__cause__, SimError)


def test_a_plugin_error_rebuilt_from_its_args_keeps_the_plugins_frames() -> None:
    import traceback

    from sim.patterns.registry import PluginError

    frames = [traceback.FrameSummary("saga.py", 12, "step")]
    exc = PluginError("pattern", "saga.py:Saga", "code that runs (it raised KeyError)", frames)
    for copy in (type(exc)(*exc.args), pickle.loads(pickle.dumps(exc))):
        assert str(copy) == str(exc) and [f.lineno for f in copy.frames] == [12]
