# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PRISM acceptance checks against the deployed services, as the application would use them: PostgreSQL
as the app user, Redis as the app user (settings read as the read-only exporter user), Kafka producers with
acks=all and the run's own consumer group, Weaviate with its API key, Prometheus and Alertmanager over HTTP.

Every check writes only inside the run's namespace (prism_acceptance.Namespace) and removes what it wrote;
``Stack.cleanup`` removes it again whatever happened, and ``Stack.snapshot`` counts what a run may touch.

One file per backend (postgres, redis, kafka, weaviate, monitoring), the whole path of one query across them
(workflow) and the open clients with the namespace's counts and cleanup (stack). The submodules import each
other by their full name (``ansible.module_utils.prism_acceptance_checks.<name>``), which Ansible's module
packaging follows to ship them with the module.
"""

from __future__ import annotations

from collections.abc import Callable

from ansible.module_utils.prism_acceptance import CheckFailed
from ansible.module_utils.prism_acceptance_checks.kafka import check_kafka_operations
from ansible.module_utils.prism_acceptance_checks.monitoring import check_monitoring
from ansible.module_utils.prism_acceptance_checks.postgres import (
    check_postgresql_basic,
    check_postgresql_relationships,
)
from ansible.module_utils.prism_acceptance_checks.redis import check_redis_operations
from ansible.module_utils.prism_acceptance_checks.stack import Services, Stack, opened
from ansible.module_utils.prism_acceptance_checks.weaviate import check_weaviate_operations
from ansible.module_utils.prism_acceptance_checks.workflow import check_integration_workflow

CHECK_FUNCTIONS: dict[str, Callable[[Stack], str]] = {
    "postgresql_basic": check_postgresql_basic,
    "postgresql_relationships": check_postgresql_relationships,
    "redis_operations": check_redis_operations,
    "weaviate_operations": check_weaviate_operations,
    "kafka_operations": check_kafka_operations,
    "integration_workflow": check_integration_workflow,
    "monitoring": check_monitoring,
}


__all__ = ["CHECK_FUNCTIONS", "CheckFailed", "Services", "Stack", "opened"]
