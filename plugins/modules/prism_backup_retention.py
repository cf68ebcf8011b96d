#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_backup_retention
short_description: Keep the newest N good PRISM backup runs and prune older ones
description:
  - A run is good when it has a complete manifest and every file matches it (size and, with
    O(verify_checksums), sha256).
  - Keeps the O(keep) newest good runs and deletes older good runs. A run that is not good (incomplete or
    corrupted) is deleted only when it is older than the newest good run.
  - With no good run at all, nothing is deleted: pruning can never remove the only good backup.
options:
  root:
    description: The backup root on the host.
    type: path
    required: true
  keep:
    description: How many good runs to keep (at least 1).
    type: int
    required: true
  verify_checksums:
    description: Count a run as good only when its files' sha256 match (false compares sizes only).
    type: bool
    default: true
attributes:
  check_mode:
    description: Plans and reports the deletions without deleting.
    support: full
  diff_mode:
    description: The run ids before and after.
    support: full
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Keep the seven newest good runs
  prism_backup_retention:
    root: /opt/prism/backups
    keep: 7
"""

RETURN = r"""
kept:
  description: Run ids kept.
  returned: success
  type: list
  elements: str
deleted:
  description: Run ids deleted (in check mode, that would be deleted).
  returned: success
  type: list
  elements: str
reasons:
  description: Per run id, why it was kept or deleted.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.prism_backup import (  # noqa: E402
    BackupError,
    delete_run,
    list_runs,
    plan_retention,
    verify_run,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "keep": {"type": "int", "required": True},
            "verify_checksums": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    root = module.params["root"]
    try:
        runs = list_runs(root)
        good = {
            run.run_id: not verify_run(run, None, module.params["verify_checksums"])
            for run in runs
            if run.complete
        }
        plan = plan_retention(runs, module.params["keep"], good)
        if not module.check_mode:
            for run_id in plan.delete:
                delete_run(root, run_id)
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=bool(plan.delete),
        kept=plan.keep,
        deleted=plan.delete,
        reasons=plan.reasons,
        diff={"before": {"runs": [run.run_id for run in runs]}, "after": {"runs": plan.keep}},
    )


if __name__ == "__main__":
    main()
