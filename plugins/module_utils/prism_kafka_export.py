# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka metadata for a backup: topic definitions and configs, and consumer-group offsets.

Message data is not exported (roles/backup/README.md: a backup of a log that moves on every second is stale when
it is written; producers replay from their source of truth instead).
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.prism_kafka_topics import read_state


def kafka_python_version() -> str:
    try:
        from kafka.version import __version__
    except ImportError:
        return "unknown"
    return str(__version__)


def is_internal(name: str) -> bool:
    return name.startswith("__")


def export_topics(admin: Any) -> list[dict[str, Any]]:
    """Every topic that is not internal, as a prism_kafka_topics declaration: name, partitions, replication
    factor and its topic-level config overrides (so a restore passes the list to that module as it is)."""
    names = sorted(name for name in admin.list_topics() if not is_internal(name))
    state = read_state(admin, names) if names else {}
    return [{"name": name, **state[name].as_dict()} for name in sorted(state)]


def export_group_offsets(admin: Any) -> dict[str, dict[str, dict[str, int]]]:
    """Committed offsets per consumer group: {group: {topic: {partition: offset}}} (as strings for JSON)."""
    groups = sorted({group["group_id"] for group in admin.list_groups()})
    if not groups:
        return {}
    result: dict[str, dict[str, dict[str, int]]] = {}
    for group, offsets in admin.list_group_offsets(groups).items():
        per_topic: dict[str, dict[str, int]] = {}
        for tp, meta in offsets.items():
            per_topic.setdefault(tp.topic, {})[str(tp.partition)] = int(meta.offset)
        result[group] = {topic: dict(sorted(parts.items())) for topic, parts in sorted(per_topic.items())}
    return dict(sorted(result.items()))


def counted(export: dict[str, Any]) -> dict[str, int]:
    """What the manifest records as counted for the Kafka part."""
    return {
        "topics": len(export["topics"]),
        "topic_config_overrides": sum(len(t["configs"]) for t in export["topics"]),
        "consumer_groups": len(export["consumer_groups"]),
        "committed_partitions": sum(
            len(parts) for topics in export["consumer_groups"].values() for parts in topics.values()
        ),
    }
