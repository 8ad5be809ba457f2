"""``broker.profile``: a profile's [broker] settings fill the scenario's, relative to the scenario file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.config.scenario import Scenario
from sim.core.errors import SimError

PROFILE = """
[profile]
broker = "rabbitmq"
client_latency = { dist = "lognormal", mean = 0.0002, cv = 0.5 }

[broker]
service = { dist = "lognormal", mean = 0.0003, cv = 0.5 }
persist = 0.0001
servers = 2
"""


def _scenario(folder: Path, broker: str) -> Path:
    path = folder / "s.toml"
    path.write_text(f'pattern = "queue"\n[topology]\nname = "line"\n[broker]\nnode = "n1"\n{broker}\n')
    return path


def test_profile_fills_the_broker_table_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "r.toml").write_text(PROFILE)
    s = Scenario.from_toml(_scenario(tmp_path, 'profile = "profiles/r.toml"\npersist = "1ms"'))
    assert s.broker.service == {"dist": "lognormal", "mean": 0.0003, "cv": 0.5}
    assert s.broker.servers == 2
    assert s.broker.persist == 0.001  # the scenario's own value wins over the profile's
    assert s.broker.profile == str(tmp_path / "profiles" / "r.toml")
    assert Scenario.from_dict(s.to_dict()) == s  # the filled values round-trip


def test_without_a_profile_nothing_changes() -> None:
    assert Scenario().broker.profile is None
    assert Scenario().broker.service is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "expected an existing profile file"),
        ("[broker\n", "expected valid TOML"),
        ("[profile]\nbroker = 'x'\n", "a TOML file with a [broker] table"),
        ("[broker]\nservice = 0.001\ncapacity = 5\n", "[broker].capacity = 5: expected one of service"),
        ("[broker]\nservice = { dist = 'nope' }\n", "service.dist"),
    ],
)
def test_a_bad_profile_is_one_error_naming_it(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / "p.toml").write_text(text)
    with pytest.raises(SimError) as err:
        Scenario.from_toml(_scenario(tmp_path, 'profile = "p.toml"'))
    assert message in str(err.value)
    assert str(err.value).startswith("broker.")
