#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_acceptance
short_description: Run the PRISM acceptance checks against a deployed stack
description:
  - Runs the functional checks of the PRISM stack against the real services and returns one row per check
    (name, status C(PASS), C(FAIL) or C(NOT RUN HERE), detail, duration) plus a printable table.
  - Checks C(postgresql_basic), C(postgresql_relationships), C(redis_operations), C(weaviate_operations),
    C(kafka_operations), C(integration_workflow), C(monitoring), then C(no_trace).
  - Every check writes only in the run's own namespace, which is PostgreSQL rows with tenant_id
    C(prism_verify_<run_id>), Redis keys under C(prism_verify:<run_id>:), the Kafka consumer group
    C(prism_verify_<run_id>). The run removes all of it (the group too) and compares the counts taken before
    and after (rows per orch_* table, Redis keys, Weaviate objects) in the C(no_trace) row, which also fails
    on anything left by an earlier run of the suite.
  - Kafka cannot delete single records, so the messages the checks produce stay in their topics until
    retention removes them. They carry the header C(prism.verify.run) and keys starting with
    C(prism_verify:); the C(no_trace) row reports how much each topic grew.
  - A service that is not deployed is named in O(not_deployed) with the reason; its checks report
    C(NOT RUN HERE) with that reason, never a silent skip.
  - The module does not fail when a check fails; the caller decides (the verify role prints the table and
    fails the play).
options:
  checks:
    description: The checks to run, in the module's order.
    type: list
    elements: str
    choices: [postgresql_basic, postgresql_relationships, redis_operations, weaviate_operations,
              kafka_operations, integration_workflow, monitoring]
    default: [postgresql_basic, postgresql_relationships, redis_operations, weaviate_operations,
              kafka_operations, integration_workflow, monitoring]
  run_id:
    description: Identifier of this run in the namespace (lower-case letters and digits). Default a UTC time stamp plus random hex.
    type: str
  not_deployed:
    description:
      - Services that are not deployed on this stack, each with the reason, for example
        C(weaviate=no running container prism_weaviate). Keys C(redis), C(kafka), C(weaviate),
        C(monitoring), C(grafana).
    type: dict
    default: {}
  redis:
    description:
      - Redis connection and the settings to prove. Keys C(host), C(port), C(user) (the app user, which runs
        the operations; password O(redis_password)), C(stats_user) (a user allowed CONFIG GET and INFO, such
        as the exporter user; password O(redis_stats_password)), C(maxmemory_policy), C(appendonly) (bool),
        C(rdb_save) (bool).
    type: dict
  redis_password:
    description: Password of the C(user) of O(redis).
    type: str
  redis_stats_password:
    description: Password of the C(stats_user) of O(redis).
    type: str
  kafka_topics:
    description: The declared topic names (files/kafka/topics.yml); the agent topics among them are used.
    type: list
    elements: str
    default: []
  weaviate:
    description:
      - Weaviate connection and expectations. Keys C(host), C(port) (REST), C(grpc_port), C(collection),
        C(tenant) (of the mirror rows), C(expected_objects) (the number of knowledge files), C(title_property)
        and C(content_property). The API key is O(weaviate_api_key).
    type: dict
  weaviate_api_key:
    description: API key of Weaviate.
    type: str
  monitoring:
    description:
      - Keys C(prometheus_url), C(alertmanager_url), C(dashboard_file) (the rendered dashboard JSON on the
        managed host) and optionally C(grafana_url).
    type: dict
extends_documentation_fragment:
  - prism_postgres
  - prism_kafka
attributes:
  check_mode:
    description: The checks write and remove test data, so in check mode none runs; every row says so.
    support: full
  diff_mode:
    description: Nothing to show; the stack is left as it was.
    support: none
requirements:
  - redis (redis-py) and weaviate-client on the managed host, besides psycopg2 and kafka-python
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Acceptance checks
  prism_acceptance:
    login_host: 127.0.0.1
    login_port: 5432
    login_user: prism_app
    login_password: "{{ postgres_app_password }}"
    login_db: prism
    bootstrap_servers: ["127.0.0.1:9092"]
    kafka_topics: [orch.monitoring.tasks, orch.monitoring.results, orch.monitoring.dlq]
    redis:
      host: 127.0.0.1
      port: 6379
      user: prism_app
      stats_user: exporter
      maxmemory_policy: allkeys-lru
      appendonly: true
      rdb_save: true
    redis_password: "{{ redis_app_password }}"
    redis_stats_password: "{{ redis_exporter_password }}"
    not_deployed:
      weaviate: "no weaviate container"
      monitoring: "no prometheus container"
  register: acceptance
"""

RETURN = r"""
rows:
  description: One row per check, C(no_trace) last.
  returned: always
  type: list
  elements: dict
  sample: [{name: postgresql_basic, status: PASS, detail: "...", duration: 0.41}]
table:
  description: The rows as a printable table, with a closing line of counts.
  returned: always
  type: list
  elements: str
failed_checks:
  description: Names of the rows with status FAIL.
  returned: always
  type: list
  elements: str
run_id:
  description: The run's identifier (its tenant is prism_verify_<run_id>).
  returned: always
  type: str
before:
  description: Counts before the run (pg_rows per table, redis_keys, weaviate_objects, kafka_end_offsets per topic).
  returned: unless check mode
  type: dict
after:
  description: The same counts after the run and its cleanup.
  returned: unless check mode
  type: dict
produced:
  description: Messages this run produced, per topic.
  returned: unless check mode
  type: dict
"""

import contextlib  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.prism_acceptance import CHECKS, run  # noqa: E402
from ansible.module_utils.prism_kafka import kafka_argument_spec  # noqa: E402
from ansible.module_utils.prism_postgres import postgres_argument_spec  # noqa: E402

# run() imports the checks only once it has found their client libraries; a module packager (Mitogen's, which
# does not follow an import inside a function of a module_utils file) ships what the module imports itself.
# A missing client library raises ImportError here; run() then names it.
with contextlib.suppress(ImportError):
    import ansible.module_utils.prism_acceptance_checks  # noqa: E402,F401


def argument_spec() -> dict:
    spec = postgres_argument_spec()
    spec.update(kafka_argument_spec())
    spec.update(
        checks={"type": "list", "elements": "str", "choices": list(CHECKS), "default": list(CHECKS)},
        run_id={"type": "str"},
        not_deployed={"type": "dict", "default": {}},
        redis={"type": "dict"},
        redis_password={"type": "str", "no_log": True},
        redis_stats_password={"type": "str", "no_log": True},
        kafka_topics={"type": "list", "elements": "str", "default": []},
        weaviate={"type": "dict"},
        weaviate_api_key={"type": "str", "no_log": True},
        monitoring={"type": "dict"},
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module)


if __name__ == "__main__":
    main()
