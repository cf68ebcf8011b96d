#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_kafka_export
short_description: Write Kafka topic definitions, their configs and consumer-group offsets to a JSON file
description:
  - Reads every topic that is not internal (names starting with C(__) are left out), with its partitions,
    replication factor and topic-level config overrides, in the form C(prism_kafka_topics) declares topics,
    so a restore passes them to that module unchanged.
  - Reads the committed offsets of every consumer group.
  - Writes both to O(dest) as JSON. Message data is not read.
options:
  dest:
    description: File to write on the managed host. Its directory must exist.
    type: path
    required: true
extends_documentation_fragment:
  - prism_kafka
attributes:
  check_mode:
    description: Reads the cluster and returns what it would write, without writing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Kafka metadata of the backup run
  prism_kafka_export:
    bootstrap_servers: ["127.0.0.1:9092"]
    dest: /opt/prism/backups/20261126T131500Z/kafka/metadata.json
"""

RETURN = r"""
counted:
  description: Topics, topic config overrides, consumer groups and committed partitions exported.
  returned: success
  type: dict
  sample: {topics: 14, topic_config_overrides: 56, consumer_groups: 2, committed_partitions: 9}
tool_version:
  description: The kafka-python version and the Kafka API version it negotiated with the broker.
  returned: success
  type: str
  sample: kafka-python 3.0.12, broker API 4.1
"""

import json  # noqa: E402
import os  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.prism_kafka import (  # noqa: E402
    connect_admin,
    describe_target,
    kafka_argument_spec,
    kafka_error_text,
    kafka_required_if,
)
from ansible.module_utils.prism_kafka_export import (  # noqa: E402
    counted,
    export_group_offsets,
    export_topics,
    kafka_python_version,
)


def main() -> None:
    spec = kafka_argument_spec()
    spec.update(dest={"type": "path", "required": True})
    module = AnsibleModule(argument_spec=spec, required_if=kafka_required_if(), supports_check_mode=True)
    dest = module.params["dest"]
    if not os.path.isdir(os.path.dirname(dest) or "."):
        module.fail_json(msg=f"dest {dest}: its directory does not exist. Fix: create it first.")
    admin = connect_admin(module)
    try:
        export = {"topics": export_topics(admin), "consumer_groups": export_group_offsets(admin)}
        # kafka-python keeps the version it negotiated on its connection manager (no public accessor in 3.0).
        negotiated = getattr(getattr(admin, "_manager", None), "broker_version", None) or ()
        api = ".".join(str(v) for v in negotiated) or "unknown"
        version = f"kafka-python {kafka_python_version()}, broker API {api}"
    except Exception as exc:  # kafka-python raises several unrelated types
        module.fail_json(
            msg=f"Reading the Kafka metadata from {describe_target(module.params)} failed: {kafka_error_text(exc)}",
            exception=traceback.format_exc(),
        )
    finally:
        admin.close()
    if not module.check_mode:
        with open(dest, "w") as handle:
            json.dump(export, handle, indent=2, sort_keys=True)
            handle.write("\n")
    module.exit_json(changed=not module.check_mode, counted=counted(export), tool_version=version)


if __name__ == "__main__":
    main()
