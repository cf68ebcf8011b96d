#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_backup_manifest
short_description: Write or verify the manifest of a PRISM backup run
description:
  - With O(state=present), hashes every file under each part's directory of a finished run
    (C(<root>/<run_id>/<part>/)) and writes C(<root>/<run_id>/manifest.json) atomically, with per part the
    tool, its version, what was counted, and every file with its size and sha256. A run without the manifest is
    incomplete; restore and retention never treat it as a backup.
  - With O(state=verified), resolves O(run_id) (C(latest) is the newest complete run), checks that every part
    in O(parts) is in the manifest and that every file exists with its recorded size and sha256, and fails
    naming each file that does not match. It changes nothing; run it before a restore touches anything.
options:
  state:
    description: C(present) writes the manifest of a finished run; C(verified) checks a run against it.
    type: str
    choices: [present, verified]
    default: verified
  root:
    description: The backup root on the host, holding one directory per run.
    type: path
    required: true
  run_id:
    description:
      - Run id (C(YYYYMMDDTHHMMSSZ), the UTC start time). With O(state=verified), C(latest) picks the newest
        complete run.
    type: str
    default: latest
  parts:
    description:
      - With O(state=present), per part name a mapping of C(tool), C(tool_version) and C(counted) (rows per
        table, keys, objects, topics...); the files are found in the part's directory.
      - With O(state=verified), a list of the part names that must be in the run (default all it has).
    type: raw
  info:
    description: With O(state=present), extra top-level manifest fields (start and end time, stack, host).
    type: dict
    default: {}
  checksums:
    description: With O(state=verified), compare sha256 too (false compares sizes only).
    type: bool
    default: true
attributes:
  check_mode:
    description: With O(state=present) the manifest is computed but not written. O(state=verified) only reads.
    support: full
  diff_mode:
    description: With O(state=present), the run's manifest before (none) and after.
    support: full
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Manifest of the run
  prism_backup_manifest:
    state: present
    root: /opt/prism/backups
    run_id: 20261126T131500Z
    parts:
      postgres: {tool: pg_dump, tool_version: "pg_dump (PostgreSQL) 17.6", counted: {prism: {public.orch_audit: 3}}}
    info: {stack: prism, started: "2026-11-26T13:15:00Z"}

- name: Check the latest run before restoring it
  prism_backup_manifest:
    root: /opt/prism/backups
    run_id: latest
    parts: [postgres, redis, kafka]
  register: backup_run
"""

RETURN = r"""
run_id:
  description: The run written or verified (C(latest) resolved).
  returned: success
  type: str
  sample: 20261126T131500Z
path:
  description: The run's directory.
  returned: success
  type: str
manifest:
  description: The manifest.
  returned: success
  type: dict
problems:
  description: With O(state=verified), each missing part and each file that does not match (the task fails).
  returned: failure
  type: list
  elements: str
"""

import os  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.prism_backup import (  # noqa: E402
    MANIFEST,
    BackupError,
    build_manifest,
    check_run_id,
    read_manifest,
    resolve_run,
    verify_run,
    write_json_atomic,
)


def _present(module: AnsibleModule) -> None:
    params = module.params
    parts = params["parts"]
    if not isinstance(parts, dict) or not parts:
        module.fail_json(
            msg="parts must be a non-empty mapping of part name to {tool, tool_version, counted}."
        )
    check_run_id(params["run_id"])
    run_dir = os.path.join(params["root"], params["run_id"])
    before = read_manifest(run_dir)
    manifest = build_manifest(run_dir, params["run_id"], parts, params["info"])
    changed = before != manifest
    if changed and not module.check_mode:
        write_json_atomic(os.path.join(run_dir, MANIFEST), manifest)
    module.exit_json(
        changed=changed,
        run_id=params["run_id"],
        path=run_dir,
        manifest=manifest,
        diff={"before": before or {}, "after": manifest},
    )


def _verified(module: AnsibleModule) -> None:
    params = module.params
    parts = params["parts"]
    if parts is not None and not (isinstance(parts, list) and all(isinstance(p, str) for p in parts)):
        module.fail_json(
            msg="With state=verified, parts must be a list of part names (e.g. [postgres, redis])."
        )
    run = resolve_run(params["root"], params["run_id"] or "latest")
    problems = verify_run(run, parts, params["checksums"])
    if problems:
        module.fail_json(
            msg=f"Backup run {run.run_id} does not match its manifest; nothing was changed. "
            + " ".join(problems),
            problems=problems,
            run_id=run.run_id,
            path=run.path,
        )
    module.exit_json(changed=False, run_id=run.run_id, path=run.path, manifest=run.manifest)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "verified"], "default": "verified"},
            "root": {"type": "path", "required": True},
            "run_id": {"type": "str", "default": "latest"},
            "parts": {"type": "raw"},
            "info": {"type": "dict", "default": {}},
            "checksums": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        if module.params["state"] == "present":
            _present(module)
        else:
            _verified(module)
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"Backup root {module.params['root']}: {exc}", exception=traceback.format_exc())


if __name__ == "__main__":
    main()
