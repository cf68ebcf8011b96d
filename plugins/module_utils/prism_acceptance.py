# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PRISM acceptance suite's frame: result rows, the test namespace of one run, the counts taken before
and after a run (the "no trace" proof) and the pass/fail table, all pure code and unit-tested; and ``run``,
the body of the module prism_acceptance. The checks against the services are in the package
prism_acceptance_checks; it imports this module, so ``run`` imports it when called.

Statuses: PASS, FAIL, and NOT RUN HERE (with the reason: the service is not deployed, or check mode). A check
is never skipped silently: every requested check yields a row.
"""

from __future__ import annotations

import re
import secrets
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.prism_kafka import client_params
from ansible.module_utils.prism_postgres import connection_params, ensure_psycopg2

PASS = "PASS"
FAIL = "FAIL"
NOT_RUN = "NOT RUN HERE"

# The checks in the order they run (the names; the seed's test_all.py and test_monitoring.py).
CHECKS = (
    "postgresql_basic",
    "postgresql_relationships",
    "redis_operations",
    "weaviate_operations",
    "kafka_operations",
    "integration_workflow",
    "monitoring",
)
# The last row: counts before and after the run compared (rows, keys, objects; Kafka offsets reported).
NO_TRACE = "no_trace"

# Every orch_* table has tenant_id. Deleting one tenant's rows goes child -> parent (V001's header), with
# the plan and subtask tables named too, so a half-built chain of a crashed run is removed as well.
ORCH_TABLES = (
    "orch_user_query",
    "orch_task_manage",
    "orch_execution_plan",
    "orch_agent_subtask",
    "orch_constraint_violation",
    "orch_user_feedback",
    "orch_knowledge_metadata",
)
TENANT_DELETE_ORDER = (
    "orch_user_feedback",
    "orch_constraint_violation",
    "orch_agent_subtask",
    "orch_execution_plan",
    "orch_task_manage",
    "orch_user_query",
    "orch_knowledge_metadata",
)
NAMESPACE_PREFIX = "prism_verify"
RUN_ID_RE = re.compile(r"^[a-z0-9]{1,32}$")


class CheckFailed(Exception):
    """A check found the stack not doing what it promised; the message says what and where."""


class NotRunHere(Exception):
    """A check cannot run on this stack (service not deployed, check mode); the message is the reason."""


@dataclass
class Row:
    name: str
    status: str
    detail: str
    duration: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration"] = round(self.duration, 2)
        return data


@dataclass(frozen=True)
class Namespace:
    """Where one run's test data lives, so that it touches nothing else and can be removed completely."""

    run_id: str

    @property
    def tenant(self) -> str:
        """tenant_id of every row the run writes."""
        return f"{NAMESPACE_PREFIX}_{self.run_id}"

    @property
    def key_prefix(self) -> str:
        """Prefix of every Redis key the run writes."""
        return f"{NAMESPACE_PREFIX}:{self.run_id}:"

    @property
    def group_id(self) -> str:
        """The run's own Kafka consumer group (deleted at the end)."""
        return f"{NAMESPACE_PREFIX}_{self.run_id}"

    @property
    def user_id(self) -> str:
        return f"{NAMESPACE_PREFIX}_user"


def new_run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise ValueError(
            f"run_id {run_id!r} is invalid: use 1 to 32 lower-case letters and digits (or leave it unset)."
        )
    return run_id


def run_check(name: str, func: Callable[[], str]) -> Row:
    """Run one check; its return value is the PASS detail, CheckFailed/any error a FAIL, NotRunHere a
    NOT RUN HERE row."""
    start = time.monotonic()
    try:
        detail = func()
        status = PASS
    except NotRunHere as exc:
        status, detail = NOT_RUN, str(exc)
    except CheckFailed as exc:
        status, detail = FAIL, str(exc)
    except Exception as exc:  # a client error is a failed check, with the place it happened
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        status = FAIL
        detail = f"{type(exc).__name__}: {exc} (at {frame.name}:{frame.lineno})"
    return Row(name, status, detail, time.monotonic() - start)


def expect(condition: bool, message: str) -> None:
    """Fail the running check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


@dataclass
class Snapshot:
    """What a run may touch, counted: rows per orch_* table, Redis keys, Weaviate objects, Kafka end offsets.

    A value of None means "not measured here" (that service is not deployed)."""

    pg_rows: dict[str, int] | None = None
    redis_keys: int | None = None
    weaviate_objects: int | None = None
    kafka_end_offsets: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_snapshots(before: Snapshot, after: Snapshot, produced: dict[str, int]) -> tuple[bool, str]:
    """Counts that the suite can remove must be equal; Kafka's end offsets must have grown by at least the
    messages the suite produced (Kafka cannot delete single records: they stay until retention).

    Returns (equal, detail)."""
    problems: list[str] = [f"before the run: {e}" for e in before.errors]
    problems += [f"after the run: {e}" for e in after.errors]
    parts: list[str] = []
    if before.pg_rows is not None and after.pg_rows is not None:
        changed = {t: (before.pg_rows[t], after.pg_rows.get(t)) for t in before.pg_rows}
        diffs = {t: ba for t, ba in changed.items() if ba[0] != ba[1]}
        total = sum(before.pg_rows.values())
        parts.append(
            f"PostgreSQL rows {total} -> {sum(after.pg_rows.values())} in {len(before.pg_rows)} tables"
        )
        for table, (b, a) in sorted(diffs.items()):
            problems.append(f"{table} {b} -> {a} rows")
    if before.redis_keys is not None and after.redis_keys is not None:
        parts.append(f"Redis keys {before.redis_keys} -> {after.redis_keys}")
        if before.redis_keys != after.redis_keys:
            problems.append(f"Redis keys {before.redis_keys} -> {after.redis_keys}")
    if before.weaviate_objects is not None and after.weaviate_objects is not None:
        parts.append(f"Weaviate objects {before.weaviate_objects} -> {after.weaviate_objects}")
        if before.weaviate_objects != after.weaviate_objects:
            problems.append(f"Weaviate objects {before.weaviate_objects} -> {after.weaviate_objects}")
    if before.kafka_end_offsets is not None and after.kafka_end_offsets is not None:
        grown = {
            t: after.kafka_end_offsets.get(t, 0) - before.kafka_end_offsets.get(t, 0)
            for t in sorted(set(before.kafka_end_offsets) | set(after.kafka_end_offsets))
        }
        ours = sum(produced.values())
        others = sum(grown.values()) - ours
        parts.append(
            f"Kafka messages +{sum(grown.values())} ({ours} of this run, kept until retention"
            + (f"; +{others} from other producers meanwhile" if others > 0 else "")
            + ")"
        )
        short = [
            f"{t} grew {g}, this run produced {produced.get(t, 0)}"
            for t, g in grown.items()
            if g < produced.get(t, 0)
        ]
        problems.extend(short)
    parts.extend(dict.fromkeys(before.notes + after.notes))
    if problems:
        return False, "counts differ after the run: " + "; ".join(problems) + " | " + "; ".join(parts)
    return True, "; ".join(parts)


def table(rows: list[Row]) -> list[str]:
    """The pass/fail table, one line per row, details wrapped under their check."""
    width = max([len(r.name) for r in rows] + [len("CHECK")])
    lines = [f"{'CHECK':<{width}}  {'STATUS':<12}  {'TIME':>6}  DETAIL"]
    for row in rows:
        lines.append(f"{row.name:<{width}}  {row.status:<12}  {row.duration:>5.1f}s  {row.detail}")
    counts = {s: sum(1 for r in rows if r.status == s) for s in (PASS, FAIL, NOT_RUN)}
    lines.append(
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NOT_RUN]} not run here (of {len(rows)} checks)"
    )
    return lines


# Grafana's built-in variables in panel expressions, with the values a query over the last hour gets.
GRAFANA_INTERVALS = {
    "$__rate_interval": "1m",
    "${__rate_interval}": "1m",
    "$__interval": "1m",
    "${__interval}": "1m",
    "$__range": "1h",
    "${__range}": "1h",
}
GRAFANA_VARIABLE_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?")
EQUALITY_VARIABLE_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*\s*)="(?=\$\{?([A-Za-z_][A-Za-z0-9_]*))')


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target with an expression, rows' nested panels included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels or []:
            for target in panel.get("targets") or []:
                expr = (target.get("expr") or "").strip()
                if expr:
                    found.append((panel.get("title") or f"panel {panel.get('id')}", expr))
            walk(panel.get("panels") or [])

    walk(dashboard.get("panels") or [])
    return found


def concrete_expr(expr: str, variables: dict[str, str] | None = None) -> str:
    """A panel expression as Prometheus can run it: Grafana's interval variables get fixed values,
    template variables their value from ``variables`` or, in a label matcher, any value (".*")."""
    for name, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(name, value)
    values = variables or {}
    # label="$var" with no value given becomes label=~".*" (an equality matcher on ".*" matches nothing).
    expr = EQUALITY_VARIABLE_RE.sub(
        lambda m: m.group(0) if m.group(2) in values else f'{m.group(1)}=~"', expr
    )
    return GRAFANA_VARIABLE_RE.sub(lambda m: values.get(m.group(1), ".*"), expr)


# ---------------------------------------------------------------------------------------------------------
# The module's body

SERVICES = ("redis", "kafka", "weaviate", "monitoring", "grafana")
LIBRARIES = {"redis": "redis", "kafka": "kafka", "weaviate": "weaviate"}


def fail_bad_input(module: AnsibleModule) -> None:
    params = module.params
    unknown = sorted(set(params["not_deployed"]) - set(SERVICES))
    if unknown:
        module.fail_json(msg=f"not_deployed has unknown services {unknown}: use {', '.join(SERVICES)}.")
    for service in ("redis", "weaviate", "monitoring"):
        if service not in params["not_deployed"] and not params[service]:
            module.fail_json(
                msg=f"{service} is not set and not named in not_deployed: give its connection ({service}: ...) "
                f"or not_deployed.{service} with the reason it is absent."
            )
    if "kafka" not in params["not_deployed"] and not params["kafka_topics"]:
        module.fail_json(msg="kafka_topics is empty: give the declared topics (files/kafka/topics.yml).")


def ensure_libraries(module: AnsibleModule) -> None:
    ensure_psycopg2(module)
    for service, name in LIBRARIES.items():
        if service in module.params["not_deployed"]:
            continue
        try:
            __import__(name)
        except ImportError:
            package = {"kafka": "kafka-python", "weaviate": "weaviate-client"}.get(name, name)
            module.fail_json(msg=missing_required_lib(package), exception=traceback.format_exc())


def run(module: AnsibleModule) -> None:
    """The module's work: validate the input, answer check mode with NOT RUN HERE rows, open the stack, run
    the requested checks and no_trace, and exit with the rows, the table and the counts."""
    params = module.params
    try:
        run_id = check_run_id(params["run_id"]) if params["run_id"] else new_run_id()
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    fail_bad_input(module)
    names = [c for c in CHECKS if c in params["checks"]]
    ns = Namespace(run_id)

    if module.check_mode:
        reason = "check mode: the checks write test data (and remove it); run without --check"
        skipped = [Row(name, NOT_RUN, reason) for name in [*names, NO_TRACE]]
        module.exit_json(
            changed=False,
            run_id=run_id,
            rows=[r.as_dict() for r in skipped],
            table=table(skipped),
            failed_checks=[],
        )
    ensure_libraries(module)

    from ansible.module_utils.prism_acceptance_checks import CHECK_FUNCTIONS, Services, opened

    absent = params["not_deployed"]
    services = Services(
        pg=connection_params(params),
        redis=None
        if "redis" in absent
        else dict(
            params["redis"], password=params["redis_password"], stats_password=params["redis_stats_password"]
        ),
        redis_absent=absent.get("redis", ""),
        kafka=None if "kafka" in absent else client_params(params),
        kafka_absent=absent.get("kafka", ""),
        kafka_topics=list(params["kafka_topics"]),
        weaviate=None
        if "weaviate" in absent
        else dict(params["weaviate"], api_key=params["weaviate_api_key"]),
        weaviate_absent=absent.get("weaviate", ""),
        monitoring=None if "monitoring" in absent else params["monitoring"],
        monitoring_absent=absent.get("monitoring", ""),
        grafana_absent=absent.get("grafana", "no Grafana URL given"),
    )
    rows: list[Row] = []
    with opened(services, ns) as stack:
        before = stack.snapshot()
        for name in names:
            rows.append(run_check(name, partial(CHECK_FUNCTIONS[name], stack)))
            rows.extend(Row(*extra) for extra in stack.extra_rows)
            stack.extra_rows.clear()

        def no_trace() -> str:
            leftovers, errors = stack.cleanup()
            after = stack.snapshot()
            result["after"] = after.as_dict()
            equal, detail = compare_snapshots(before, after, stack.produced)
            if leftovers:
                detail += f"; cleanup removed what failed checks left: {', '.join(leftovers)}"
            if errors:
                raise CheckFailed("; ".join(errors) + " | " + detail)
            traces = stack.traces()
            if not equal or traces:
                raise CheckFailed(
                    detail
                    + (
                        "; traces of the suite remain: " + "; ".join(traces) + " (an earlier run was"
                        " interrupted? remove those rows, keys and groups)"
                        if traces
                        else ""
                    )
                )
            return detail

        result: dict = {}
        rows.append(run_check(NO_TRACE, no_trace))
        produced = dict(stack.produced)
    module.exit_json(
        changed=False,
        run_id=run_id,
        rows=[r.as_dict() for r in rows],
        table=table(rows),
        failed_checks=[r.name for r in rows if r.status == FAIL],
        passed=sum(1 for r in rows if r.status == PASS),
        before=before.as_dict(),
        after=result.get("after", {}),
        produced=produced,
    )
