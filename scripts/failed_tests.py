"""Print the failed and errored tests of the JUnit reports given, one line each: `make molecule` ends with
them, so the tail of a CI log names what failed (Molecule wraps and prefixes the verifier's own summary)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    found = 0
    for path in map(Path, paths):
        if not path.is_file():
            print(f"{path}: no report (the scenario failed before its verifier ran)")
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            for outcome in ("failure", "error"):
                for problem in case.findall(outcome):
                    message = (problem.get("message") or "").splitlines()[0:1]
                    name = f"{case.get('classname')}::{case.get('name')}"
                    print(f"{outcome.upper()} {path.stem}: {name} - {' '.join(message)[:300]}")
                    found += 1
    if not found:
        print("no failed test in the reports: the failure came from another Molecule step (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
