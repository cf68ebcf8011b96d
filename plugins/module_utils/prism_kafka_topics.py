# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative Kafka topics: validation and planning (pure), then applying with the admin client.

``parse_topics`` validates the declaration before anything talks to a broker; ``plan_topics`` compares it
with the observed state (``read_state``) and returns what to create, grow, reconfigure and delete, or the
refusals (shrink, replication factor change); ``apply_plan`` sends one admin request per kind of change,
with ``validate_only`` in check mode where the protocol has it.

Config convergence uses IncrementalAlterConfigs (SET / DELETE per key): only the keys that differ are sent,
so a concurrent change of another key is never reset, unlike the legacy AlterConfigs, which replaces the
whole set of a topic's overrides.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.prism_changes import ChangeTracker
from ansible.module_utils.prism_kafka import kafka_error_text

try:
    import kafka.errors as kafka_errors
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.admin._configs import AlterConfigOp
except ImportError:  # reported by prism_kafka.ensure_kafka_python before anything here runs
    kafka_errors = None

MAX_NAME_LENGTH = 249
NAME_RE = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_PREFIX = "__"
TOPIC_KEYS = {"name", "partitions", "replication_factor", "configs", "state"}
DEFAULT_KEYS = {"partitions", "replication_factor", "configs"}
TOPIC_CONFIG_SOURCE = "DYNAMIC_TOPIC_CONFIG"
METADATA_WAIT_MS = 30000


class TopicError(Exception):
    """A failure with a message for the user; ``details`` are returned next to ``msg``."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


@dataclass(frozen=True)
class TopicSpec:
    name: str
    state: str = "present"
    partitions: int | None = None
    replication_factor: int | None = None
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]  # topic-level overrides only

    def as_dict(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "configs": dict(sorted(self.configs.items())),
        }


@dataclass
class ConfigChange:
    set: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    before: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Plan:
    create: list[TopicSpec] = field(default_factory=list)
    grow: dict[str, tuple[int, int]] = field(default_factory=dict)
    configs: dict[str, ConfigChange] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    unmanaged: dict[str, list[str]] = field(default_factory=dict)
    tracker: ChangeTracker = field(default_factory=ChangeTracker)

    @property
    def changed(self) -> bool:
        return self.tracker.changed


# --- validation (no broker) ------------------------------------------------------------------------------


def name_problem(name: Any) -> str | None:
    """Why ``name`` is not a valid Kafka topic name, or None."""
    if not isinstance(name, str) or not name:
        return "a topic name must be a non-empty string"
    if name in (".", ".."):
        return f"topic name {name!r} is not allowed ('.' and '..' are reserved)"
    if len(name) > MAX_NAME_LENGTH:
        return f"topic name {name[:40]!r}... is {len(name)} characters long; the maximum is {MAX_NAME_LENGTH}"
    if not NAME_RE.match(name):
        bad = sorted({c for c in name if not re.match(r"[a-zA-Z0-9._-]", c)})
        return f"topic name {name!r} contains {''.join(bad)!r}: only ASCII letters, digits, '.', '_' and '-' are allowed"
    if name.startswith(INTERNAL_PREFIX):
        return f"topic name {name!r} starts with '__': internal topics belong to Kafka and are never managed here"
    return None


def config_value(topic: str, key: str, value: Any) -> str:
    """The broker's string form of a declared config value (true/false, integers, comma lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return ",".join(str(v) for v in value)
    raise TopicError(
        f"Topic {topic}: configs.{key} is {value!r}; give a string, number, true/false or a list of strings."
    )


def _positive(topic: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TopicError(f"Topic {topic}: {key} is {value!r}; it must be a whole number of at least 1.")
    return value


def parse_topics(topics: list[Any], defaults: dict[str, Any] | None = None) -> list[TopicSpec]:
    """Validate the declaration (names first, so nothing is sent for a bad one) and merge the defaults."""
    defaults = dict(defaults or {})
    unknown = set(defaults) - DEFAULT_KEYS
    if unknown:
        raise TopicError(f"defaults has unknown keys {sorted(unknown)}; allowed: {sorted(DEFAULT_KEYS)}.")
    problems = []
    for index, topic in enumerate(topics):
        name = topic.get("name") if isinstance(topic, dict) else None
        problem = name_problem(name)
        if problem:
            problems.append(f"topics[{index}]: {problem}")
    if problems:
        raise TopicError("Invalid topic names, nothing was changed: " + "; ".join(problems) + ".")
    specs: dict[str, TopicSpec] = {}
    for topic in topics:
        name = topic["name"]
        unknown = set(topic) - TOPIC_KEYS
        if unknown:
            raise TopicError(f"Topic {name}: unknown keys {sorted(unknown)}; allowed: {sorted(TOPIC_KEYS)}.")
        if name in specs:
            raise TopicError(f"Topic {name} is declared twice; declare each topic once.")
        state = topic.get("state", "present")
        if state not in ("present", "absent"):
            raise TopicError(f"Topic {name}: state is {state!r}; use present or absent.")
        if not isinstance(topic.get("configs") or {}, dict) or not isinstance(
            defaults.get("configs") or {}, dict
        ):
            raise TopicError(f"Topic {name}: configs must be a mapping of topic config names to values.")
        merged_configs = {**(defaults.get("configs") or {}), **(topic.get("configs") or {})}
        specs[name] = TopicSpec(
            name=name,
            state=state,
            partitions=_positive(name, "partitions", topic.get("partitions", defaults.get("partitions"))),
            replication_factor=_positive(
                name,
                "replication_factor",
                topic.get("replication_factor", defaults.get("replication_factor")),
            ),
            configs={k: config_value(name, k, v) for k, v in merged_configs.items()},
        )
    return list(specs.values())


# --- planning (pure) -------------------------------------------------------------------------------------


def plan_topics(specs: list[TopicSpec], current: dict[str, TopicState], purge_configs: bool) -> Plan:
    """Compare the declaration with the observed topics; record before/after of every declared topic."""
    plan = Plan()
    for spec in specs:
        now = current.get(spec.name)
        before = now.as_dict() if now else None
        if spec.state == "absent":
            if now is not None:
                plan.delete.append(spec.name)
            plan.tracker.add(spec.name, before, None)
            continue
        if now is None:
            plan.create.append(spec)
            plan.tracker.add(
                spec.name,
                None,
                {
                    "partitions": spec.partitions if spec.partitions is not None else "broker default",
                    "replication_factor": spec.replication_factor
                    if spec.replication_factor is not None
                    else "broker default",
                    "configs": dict(sorted(spec.configs.items())),
                },
            )
            continue
        after = now.as_dict()
        if spec.partitions is not None:
            if spec.partitions < now.partitions:
                plan.refusals.append(
                    f"{spec.name}: partitions {now.partitions} -> {spec.partitions} refused: Kafka cannot remove "
                    "partitions, and keyed messages would move to other partitions (ordering per key breaks). "
                    "Keep the count, or create a new topic and migrate."
                )
            elif spec.partitions > now.partitions:
                plan.grow[spec.name] = (now.partitions, spec.partitions)
                after["partitions"] = spec.partitions
        if spec.replication_factor is not None and spec.replication_factor != now.replication_factor:
            plan.refusals.append(
                f"{spec.name}: replication_factor {now.replication_factor} -> {spec.replication_factor} refused: "
                "changing it is a partition reassignment (kafka-reassign-partitions) that moves data between "
                "brokers; this module does not do it. Reassign by hand or keep the factor."
            )
        change = ConfigChange()
        for key, value in spec.configs.items():
            if now.configs.get(key) != value:
                change.set[key] = value
                change.before[key] = now.configs.get(key)
        unmanaged = sorted(set(now.configs) - set(spec.configs))
        if unmanaged:
            if purge_configs:
                change.delete = unmanaged
                for key in unmanaged:
                    change.before[key] = now.configs[key]
            else:
                plan.unmanaged[spec.name] = unmanaged
        if change.set or change.delete:
            plan.configs[spec.name] = change
            configs = {k: v for k, v in now.configs.items() if k not in change.delete}
            configs.update(change.set)
            after["configs"] = dict(sorted(configs.items()))
        plan.tracker.add(spec.name, before, after)
    return plan


# --- the broker side -------------------------------------------------------------------------------------


def _topic_state(name: str, metadata: dict[str, Any], configs: dict[str, Any]) -> TopicState:
    partitions = metadata.get("partitions") or []
    replicas = max((len(p.get("replica_nodes") or []) for p in partitions), default=0)
    overrides = {
        key: str(entry.get("value"))
        for key, entry in configs.items()
        if entry.get("config_source") == TOPIC_CONFIG_SOURCE and entry.get("value") is not None
    }
    return TopicState(name=name, partitions=len(partitions), replication_factor=replicas, configs=overrides)


def read_state(admin: Any, names: list[str]) -> dict[str, TopicState]:
    """Partitions, replication factor and topic-level overrides of the declared topics that exist.

    Two requests: Metadata for the declared names, DescribeConfigs for those that exist.
    """
    existing: dict[str, dict[str, Any]] = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0 and topic.get("name") in names:
            existing[topic["name"]] = topic
        elif topic.get("error_code") not in (0, 3):  # 3: UNKNOWN_TOPIC_OR_PARTITION, i.e. absent
            error = kafka_errors.for_code(topic["error_code"])
            raise TopicError(f"Could not describe topic {topic.get('name')}: {error.__name__}.")
    if not existing:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(existing)]
    described = admin.describe_configs(resources, config_filter="modified").get("topic", {})
    return {name: _topic_state(name, meta, described.get(name, {})) for name, meta in existing.items()}


def _raise_result_errors(action: str, results: dict[str, str]) -> None:
    failed = {name: result for name, result in results.items() if result != "OK"}
    if failed:
        raise TopicError(
            f"{action} failed for "
            + "; ".join(f"{name}: {result}" for name, result in sorted(failed.items())),
            failed=sorted(failed),
        )


def apply_plan(admin: Any, plan: Plan, check_mode: bool) -> None:
    """Send the planned changes: one request per kind. Check mode validates where the protocol can."""
    try:
        if plan.create:
            request = {
                spec.name: {
                    "num_partitions": spec.partitions if spec.partitions is not None else -1,
                    "replication_factor": spec.replication_factor
                    if spec.replication_factor is not None
                    else -1,
                    "configs": spec.configs,
                }
                for spec in plan.create
            }
            result = admin.create_topics(request, validate_only=check_mode, raise_errors=False)
            errors = {
                t[
                    "name"
                ]: f"{kafka_errors.for_code(t['error_code']).__name__}: {t.get('error_message') or ''}"
                for t in result["topics"]
                if t["error_code"] != 0
            }
            if errors:
                raise TopicError(
                    "Creating topics failed ("
                    + ("validated only, check mode" if check_mode else "the others were created")
                    + "): "
                    + "; ".join(f"{n}: {e}" for n, e in sorted(errors.items())),
                    failed=sorted(errors),
                )
            if not check_mode:
                admin.wait_for_topics(list(request), timeout_ms=METADATA_WAIT_MS)
        if plan.grow:
            response = admin.create_partitions(
                {name: new for name, (_old, new) in plan.grow.items()},
                validate_only=check_mode,
                raise_errors=False,
            )
            errors = {}
            for item in response.results:
                if item.error_code != 0:
                    error = kafka_errors.for_code(item.error_code)
                    errors[item.name] = f"{error.__name__}: {item.error_message or ''}"
            if errors:
                raise TopicError(
                    "Adding partitions failed: " + "; ".join(f"{n}: {e}" for n, e in sorted(errors.items())),
                    failed=sorted(errors),
                )
        if plan.configs:
            resources = [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    name,
                    {
                        **{key: (AlterConfigOp.SET, value) for key, value in change.set.items()},
                        **{key: (AlterConfigOp.DELETE, None) for key in change.delete},
                    },
                )
                for name, change in sorted(plan.configs.items())
            ]
            results = admin.alter_configs(
                resources, validate_only=check_mode, raise_on_unknown=False, incremental=True
            )
            _raise_result_errors("Changing topic configs", results.get("topic", {}))
        if plan.delete and not check_mode:
            result = admin.delete_topics(plan.delete, raise_errors=False)
            errors = {
                t["name"]: kafka_errors.for_code(t["error_code"]).__name__
                for t in result["topics"]
                if t["error_code"] != 0
            }
            if errors:
                raise TopicError(
                    "Deleting topics failed: " + "; ".join(f"{n}: {e}" for n, e in sorted(errors.items())),
                    failed=sorted(errors),
                )
    except TopicError:
        raise
    except Exception as exc:
        raise TopicError(
            f"Kafka admin request failed: {kafka_error_text(exc)}", exception=traceback.format_exc()
        ) from exc


def result_of(plan: Plan, specs: list[TopicSpec], check_mode: bool) -> dict[str, Any]:
    """The module result: changed from the before/after states, the actions and the diff."""
    return {
        "changed": plan.changed,
        "created": [spec.name for spec in plan.create],
        "deleted": list(plan.delete),
        "partitions_added": {name: {"before": old, "after": new} for name, (old, new) in plan.grow.items()},
        "configs_changed": {
            name: {"set": change.set, "deleted": change.delete, "before": change.before}
            for name, change in plan.configs.items()
        },
        "drift": sorted(set(plan.grow) | set(plan.configs)),
        "unmanaged_configs": plan.unmanaged,
        "topics": sorted(spec.name for spec in specs if spec.state == "present"),
        "diff": plan.tracker.diff(),
    }
