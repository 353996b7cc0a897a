"""The catalog: every scenario the lab can play, by name, found by looking.

A race is one file: a module here that defines ``SCENARIO`` is in the catalog, in the
order of its seed frame (5.1-5.5, then Catalog II) and name. Nothing else lists it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from ..errors import UsageError
from ..runner import Scenario


def _discover() -> dict[str, Scenario]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if isinstance(scenario, Scenario):
            found.append(scenario)
    return {s.name: s for s in sorted(found, key=lambda s: (s.frame, s.name))}


SCENARIOS: dict[str, Scenario] = _discover()


def get(name: str) -> Scenario:
    """A catalog scenario by name (`python -m lab list`); an unknown name is bad input."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}"
                         " (python -m lab list)") from None


def find(name: str) -> Scenario:
    """A catalog scenario by name, a spec file by path (anything ending in .spec), or a
    generated workload of the services by its name (``workload:...``)."""
    from ..workload import PREFIX, scenario

    if name.startswith(PREFIX):
        return scenario(name)
    if name.endswith(".spec") or os.sep in name:
        from ..spec import load_scenario

        return load_scenario(name)
    return get(name)
