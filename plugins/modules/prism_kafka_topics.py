#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_kafka_topics
short_description: Converge Kafka topics to a declared list
description:
  - Creates the declared topics that are missing, all in one CreateTopics request; adds partitions to
    topics that have fewer than declared (one CreatePartitions request); converges each topic's topic-level
    config overrides with IncrementalAlterConfigs (only the keys that differ are sent) and reports the drift.
  - Refuses, before changing anything, to shrink a topic's partitions or to change its replication factor,
    saying why.
  - Deletes only topics declared with O(topics[].state=absent). Internal topics (names starting with C(__))
    are never touched and cannot be declared.
  - Topic names are validated before any request is sent. Valid names have 1 to 249 characters out of
    ASCII letters, digits, C(.), C(_) and C(-), and are not C(.) or C(..).
options:
  topics:
    description:
      - The topics, each a mapping.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Topic name.
        type: str
        required: true
      state:
        description: C(absent) deletes the topic if it exists.
        type: str
        choices: [present, absent]
        default: present
      partitions:
        description: Partition count. Unset uses O(defaults.partitions), then the broker's C(num.partitions).
        type: int
      replication_factor:
        description: Replicas per partition. Unset uses O(defaults.replication_factor), then the broker default.
        type: int
      configs:
        description:
          - Topic-level config overrides, such as C(retention.ms) or C(cleanup.policy), merged over
            O(defaults.configs). Values may be strings, numbers, booleans or lists (joined with commas).
        type: dict
  defaults:
    description:
      - Values for every topic that does not set them itself; keys C(partitions), C(replication_factor),
        C(configs).
    type: dict
    default: {}
  purge_configs:
    description:
      - When true, topic-level overrides that are not declared are removed (the topic falls back to the broker
        default), so the declaration is the whole truth. When false they stay and are listed in
        RV(unmanaged_configs).
    type: bool
    default: false
extends_documentation_fragment:
  - prism_kafka
attributes:
  check_mode:
    description: >-
      Reads the state and sends the planned CreateTopics, CreatePartitions and IncrementalAlterConfigs requests
      with validate_only, so the broker checks them while nothing changes. Deletions are only planned.
    support: full
  diff_mode:
    description: Returns partitions, replication factor and config overrides of every declared topic before and after.
    support: full
notes:
  - Changing partitions of a topic that carries keyed messages moves keys to other partitions; the module
    grows partitions because it was declared, so declare it deliberately.
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Topics of the orchestration agents
  prism_kafka_topics:
    bootstrap_servers: ["127.0.0.1:9092"]
    defaults:
      replication_factor: 1
      configs:
        min.insync.replicas: 1
    topics:
      - name: orch.monitoring.tasks
        partitions: 6
        configs:
          retention.ms: 604800000
      - name: orch.monitoring.dlq
        partitions: 1
        configs:
          retention.ms: 2592000000
      - name: orch.legacy.events
        state: absent
    purge_configs: true

- name: Show what would change
  prism_kafka_topics:
    topics: "{{ (lookup('ansible.builtin.file', 'files/kafka/topics.yml') | from_yaml).topics }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
created:
  description: Topics created by this run (in check mode, that would be created).
  returned: success
  type: list
  elements: str
  sample: [orch.monitoring.tasks]
deleted:
  description: Topics deleted (in check mode, that would be deleted).
  returned: success
  type: list
  elements: str
partitions_added:
  description: Topics whose partitions were added, with the count before and after.
  returned: success
  type: dict
  sample: {orch.control.tasks: {before: 3, after: 6}}
configs_changed:
  description: Per topic, the overrides set (new values), deleted (keys) and their values before.
  returned: success
  type: dict
  sample: {orch.audit: {set: {retention.ms: "7776000000"}, deleted: [], before: {retention.ms: "2592000000"}}}
drift:
  description: Existing topics whose partitions or configs differed from the declaration.
  returned: success
  type: list
  elements: str
unmanaged_configs:
  description: With O(purge_configs=false), per topic the overrides that are set on the broker but not declared.
  returned: success
  type: dict
topics:
  description: Names of the declared topics with state present.
  returned: success
  type: list
  elements: str
refusals:
  description: Why the run refused to change a topic (shrink, replication factor).
  returned: failure, when a change was refused
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.prism_kafka import (  # noqa: E402
    connect_admin,
    ensure_kafka_python,
    kafka_argument_spec,
    kafka_required_if,
)
from ansible.module_utils.prism_kafka_topics import (  # noqa: E402
    TopicError,
    apply_plan,
    parse_topics,
    plan_topics,
    read_state,
    result_of,
)


def argument_spec() -> dict:
    spec = kafka_argument_spec()
    spec.update(
        topics={
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": {
                "name": {"type": "str", "required": True},
                "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                "partitions": {"type": "int"},
                "replication_factor": {"type": "int"},
                "configs": {"type": "dict"},
            },
        },
        defaults={"type": "dict", "default": {}},
        purge_configs={"type": "bool", "default": False},
    )
    return spec


def _declared(topic: dict) -> dict:
    """Drop the options the user left unset, so that defaults can fill them."""
    return {key: value for key, value in topic.items() if value is not None}


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(), required_if=kafka_required_if(), supports_check_mode=True
    )
    ensure_kafka_python(module)
    try:
        specs = parse_topics([_declared(t) for t in module.params["topics"]], module.params["defaults"])
    except TopicError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    admin = connect_admin(module)
    try:
        current = read_state(admin, [spec.name for spec in specs])
        plan = plan_topics(specs, current, module.params["purge_configs"])
        if plan.refusals:
            raise TopicError(
                "Refused, nothing was changed: " + " ".join(plan.refusals), refusals=plan.refusals
            )
        apply_plan(admin, plan, module.check_mode)
    except TopicError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    finally:
        admin.close()
    result = result_of(plan, specs, module.check_mode)
    for topic, keys in sorted(plan.unmanaged.items()):
        module.warn(
            f"Topic {topic} has undeclared config overrides {keys} (purge_configs is off: left as they are)."
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
