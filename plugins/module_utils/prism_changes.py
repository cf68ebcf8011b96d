# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Before/after change tracking shared by the PRISM seed modules.

Backend-agnostic: a module reads the current state, records what it will be after the run, and asks the
tracker whether anything differs and for the ``diff`` to return. Modelled on community.docker's
``DifferenceTracker``, reduced to what our modules need.
"""

from __future__ import annotations

from typing import Any


class ChangeTracker:
    """Record named before/after values; report whether any differ and the Ansible ``diff``."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, Any]] = {}

    def add(self, name: str, before: Any, after: Any) -> None:
        """Record the state of ``name`` before and after the run (a later call for ``name`` replaces it)."""
        self._items[name] = (before, after)

    @property
    def changed(self) -> bool:
        """True when at least one recorded item differs between before and after."""
        return bool(self.differences)

    @property
    def differences(self) -> list[str]:
        """Names whose before and after values differ, in the order they were first added."""
        return [name for name, (before, after) in self._items.items() if before != after]

    def diff(self) -> dict[str, dict[str, Any]]:
        """Return ``{'before': {...}, 'after': {...}}`` over every recorded item, as Ansible expects."""
        return {
            "before": {name: before for name, (before, _after) in self._items.items()},
            "after": {name: after for name, (_before, after) in self._items.items()},
        }
