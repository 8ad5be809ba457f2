"""Broker profiles: a TOML file whose ``[broker]`` table gives the broker model's fitted settings.

``broker.profile = "profiles/rabbitmq.toml"`` in a scenario fills ``service``, ``persist`` and ``servers``
of the ``[broker]`` table from the profile, except those the scenario sets itself. A relative path is
relative to the scenario file (to the working directory for a scenario built in Python). ``sim calibrate``
writes profiles (docs/calibrate.md); the ``[profile]`` table says where and how one was measured and is not
read here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sim.core.errors import SimError

__all__ = ["PROFILE_KEYS", "apply_profile", "load_profile"]

PROFILE_KEYS = ("service", "persist", "servers")
"""The ``[broker]`` settings a profile may give."""


def load_profile(path: str | Path) -> dict[str, Any]:
    """The ``[broker]`` settings of the profile at ``path``; a missing or bad file or key: ``SimError``."""
    where = Path(path).expanduser()
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimError("broker.profile", str(path), "an existing profile file (TOML)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SimError("broker.profile", str(path), f"a readable UTF-8 TOML file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SimError("broker.profile", str(path), f"valid TOML ({exc})") from None
    broker = data.get("broker")
    if not isinstance(broker, dict) or not broker:
        allowed = "a TOML file with a [broker] table (written by sim calibrate)"
        raise SimError("broker.profile", str(path), allowed)
    extra = sorted(set(broker) - set(PROFILE_KEYS))
    if extra:
        key = f"broker.profile: {path}: [broker].{extra[0]}"
        raise SimError(key, broker[extra[0]], "one of " + ", ".join(PROFILE_KEYS))
    return dict(broker)


def apply_profile(data: Any) -> Any:
    """``[broker]`` settings with its ``profile``'s values filled in where the table gives none (a
    model validator of :class:`sim.config.sections.BrokerSettings`, before the fields are checked)."""
    if not isinstance(data, dict) or data.get("profile") is None:
        return data
    path = data["profile"]
    if not isinstance(path, str | Path) or not str(path):
        raise SimError("broker.profile", path, "the path of a profile file (TOML, written by sim calibrate)")
    return {**load_profile(path), **data, "profile": str(path)}
