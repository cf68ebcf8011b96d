#!/usr/bin/env python3
"""Fail when a role's meta/argument_specs.yml options differ from the keys of its defaults/main.yml."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    problems: list[str] = []
    roles = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
    for role in roles:
        # defaults/main.yml, or a defaults/main/ directory of *.yml files (Ansible reads either).
        defaults_files = [role / "defaults" / "main.yml", *sorted((role / "defaults" / "main").glob("*.yml"))]
        specs_file = role / "meta" / "argument_specs.yml"
        if not specs_file.exists():
            problems.append(f"{role.name}: meta/argument_specs.yml is missing")
            continue
        defaults: set[str] = set()
        for defaults_file in defaults_files:
            if defaults_file.exists():
                defaults |= set(yaml.safe_load(defaults_file.read_text()) or {})
        specs = yaml.safe_load(specs_file.read_text())["argument_specs"]["main"].get("options") or {}
        for name in sorted(defaults - set(specs)):
            problems.append(f"{role.name}: {name} is in defaults but not in meta/argument_specs.yml")
        for name in sorted(set(specs) - defaults):
            problems.append(f"{role.name}: {name} is in meta/argument_specs.yml but not in defaults")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"argument specs: {len(roles)} roles checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
