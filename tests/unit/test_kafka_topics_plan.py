"""Planning logic of prism_kafka_topics: validation and plans over declared specs and observed states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.prism_kafka import client_params, describe_target
from ansible.module_utils.prism_kafka_topics import (
    TopicError,
    TopicSpec,
    TopicState,
    config_value,
    name_problem,
    parse_topics,
    plan_topics,
)
from module_stub import FailJson, FakeModule

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPICS_FILE = REPO_ROOT / "files" / "kafka" / "topics.yml"
AGENTS = ("monitoring", "prediction", "control", "analysis")


def state(name: str, partitions: int = 3, rf: int = 1, configs: dict[str, str] | None = None) -> TopicState:
    return TopicState(name=name, partitions=partitions, replication_factor=rf, configs=dict(configs or {}))


def spec(
    name: str,
    partitions: int | None = 3,
    rf: int | None = 1,
    state: str = "present",
    configs: dict[str, str] | None = None,
) -> TopicSpec:
    return TopicSpec(name, state, partitions, rf, dict(configs or {}))


# --- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orch.monitoring.tasks", "a", "A-b_c.9", "t" * 249])
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "non-empty"),
        (None, "non-empty"),
        (".", "reserved"),
        ("..", "reserved"),
        ("t" * 250, "maximum is 249"),
        ("orch/tasks", "'/'"),
        ("orch tasks", "' '"),
        ("orch.täsks", "only ASCII"),
        ("__consumer_offsets", "internal topics"),
        ("__cluster_metadata", "internal topics"),
    ],
)
def test_invalid_names(name: Any, fragment: str) -> None:
    problem = name_problem(name)
    assert problem is not None and fragment in problem


def test_parse_reports_every_bad_name_at_once() -> None:
    with pytest.raises(TopicError) as err:
        parse_topics([{"name": "ok"}, {"name": "bad name"}, {"name": "x" * 300}])
    assert "topics[1]" in err.value.msg and "topics[2]" in err.value.msg
    assert "nothing was changed" in err.value.msg


# --- parsing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (604800000, "604800000"),
        (0.5, "0.5"),
        ("delete", "delete"),
        (["compact", "delete"], "compact,delete"),
    ],
)
def test_config_values_in_broker_form(value: Any, expected: str) -> None:
    assert config_value("t", "k", value) == expected


@pytest.mark.parametrize("value", [None, {"a": 1}, []])
def test_config_value_rejects_other_types(value: Any) -> None:
    with pytest.raises(TopicError, match="configs.k"):
        config_value("t", "k", value)


def test_defaults_merge_and_topic_wins() -> None:
    (parsed,) = parse_topics(
        [{"name": "t", "partitions": 6, "configs": {"retention.ms": 1}}],
        {
            "partitions": 1,
            "replication_factor": 1,
            "configs": {"retention.ms": 9, "cleanup.policy": "delete"},
        },
    )
    assert parsed == TopicSpec("t", "present", 6, 1, {"retention.ms": "1", "cleanup.policy": "delete"})


@pytest.mark.parametrize(
    ("topics", "defaults", "fragment"),
    [
        ([{"name": "t"}, {"name": "t"}], {}, "declared twice"),
        ([{"name": "t", "partitions": 0}], {}, "at least 1"),
        ([{"name": "t", "partitions": True}], {}, "whole number"),
        ([{"name": "t", "replication_factor": -1}], {}, "at least 1"),
        ([{"name": "t", "state": "gone"}], {}, "present or absent"),
        ([{"name": "t", "retention": 1}], {}, "unknown keys"),
        ([{"name": "t", "configs": ["a"]}], {}, "mapping"),
        ([{"name": "t"}], {"cleanup": 1}, "defaults has unknown keys"),
    ],
)
def test_parse_refuses_bad_declarations(topics: list, defaults: dict, fragment: str) -> None:
    with pytest.raises(TopicError, match=fragment):
        parse_topics(topics, defaults)


# --- plans ------------------------------------------------------------------------------------------------


def test_missing_topics_are_created_together() -> None:
    plan = plan_topics([spec("a"), spec("b", partitions=None, rf=None)], {}, purge_configs=False)
    assert [s.name for s in plan.create] == ["a", "b"]
    assert plan.changed
    assert plan.tracker.diff()["before"] == {"a": None, "b": None}
    assert plan.tracker.diff()["after"]["b"]["partitions"] == "broker default"


def test_converged_topic_is_unchanged() -> None:
    plan = plan_topics(
        [spec("a", configs={"retention.ms": "1"})], {"a": state("a", configs={"retention.ms": "1"})}, True
    )
    assert not plan.changed
    assert not (plan.create or plan.grow or plan.configs or plan.delete or plan.refusals)


def test_partitions_grow() -> None:
    plan = plan_topics([spec("a", partitions=6)], {"a": state("a", partitions=3)}, False)
    assert plan.grow == {"a": (3, 6)}
    assert plan.tracker.diff()["after"]["a"]["partitions"] == 6
    assert plan.changed


def test_unset_partitions_never_grow_or_shrink() -> None:
    plan = plan_topics([spec("a", partitions=None, rf=None)], {"a": state("a", partitions=12, rf=3)}, False)
    assert not plan.changed and not plan.refusals


def test_shrink_is_refused_with_reason() -> None:
    plan = plan_topics([spec("a", partitions=2)], {"a": state("a", partitions=4)}, False)
    (refusal,) = plan.refusals
    assert "a: partitions 4 -> 2 refused" in refusal and "cannot remove partitions" in refusal
    assert not plan.grow


def test_replication_factor_change_is_refused() -> None:
    plan = plan_topics([spec("a", rf=3)], {"a": state("a", rf=1)}, False)
    (refusal,) = plan.refusals
    assert "replication_factor 1 -> 3 refused" in refusal and "reassign" in refusal


def test_config_drift_sets_only_differing_keys() -> None:
    current = {"a": state("a", configs={"retention.ms": "1", "cleanup.policy": "delete"})}
    plan = plan_topics([spec("a", configs={"retention.ms": "2", "cleanup.policy": "delete"})], current, False)
    change = plan.configs["a"]
    assert (
        change.set == {"retention.ms": "2"} and change.delete == [] and change.before == {"retention.ms": "1"}
    )
    assert plan.tracker.diff()["after"]["a"]["configs"] == {"cleanup.policy": "delete", "retention.ms": "2"}


def test_undeclared_overrides_reported_or_purged() -> None:
    current = {"a": state("a", configs={"retention.ms": "1", "segment.ms": "5"})}
    kept = plan_topics([spec("a", configs={"retention.ms": "1"})], current, purge_configs=False)
    assert not kept.changed and kept.unmanaged == {"a": ["segment.ms"]}
    purged = plan_topics([spec("a", configs={"retention.ms": "1"})], current, purge_configs=True)
    assert purged.changed and purged.configs["a"].delete == ["segment.ms"]
    assert purged.tracker.diff()["after"]["a"]["configs"] == {"retention.ms": "1"}


def test_absent_deletes_existing_only() -> None:
    plan = plan_topics(
        [spec("gone", state="absent"), spec("never", state="absent")], {"gone": state("gone")}, False
    )
    assert plan.delete == ["gone"]
    assert plan.tracker.diff()["after"] == {"gone": None, "never": None}
    assert plan.tracker.differences == ["gone"]


def test_undeclared_topics_are_not_touched() -> None:
    plan = plan_topics(
        [spec("a")], {"a": state("a"), "other": state("other"), "__consumer_offsets": state("x")}, True
    )
    assert not plan.changed and "other" not in plan.tracker.diff()["before"]


# --- the shipped declaration ------------------------------------------------------------------------------


def test_shipped_topics_file() -> None:
    data = yaml.safe_load(TOPICS_FILE.read_text())
    specs = parse_topics(data["topics"], data["defaults"])
    names = {s.name for s in specs}
    assert len(specs) == 14
    for agent in AGENTS:
        assert {f"orch.{agent}.tasks", f"orch.{agent}.results", f"orch.{agent}.dlq"} <= names
    assert {"orch.system.events", "orch.audit"} <= names
    for s in specs:
        assert s.state == "present" and s.partitions and s.replication_factor == 1
        assert s.configs["min.insync.replicas"] == "1" and "retention.ms" in s.configs
        if s.name.endswith(".dlq"):
            assert s.configs["retention.ms"] == str(30 * 24 * 3600 * 1000)


# --- connection options, documentation, missing library --------------------------------------------------


def _params(**extra: Any) -> dict[str, Any]:
    base = {
        "bootstrap_servers": ["k:9092"],
        "security_protocol": "PLAINTEXT",
        "sasl_mechanism": None,
        "sasl_username": None,
        "sasl_password": None,
        "ssl_cafile": None,
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "request_timeout": 5,
    }
    return {**base, **extra}


def test_client_params_plaintext_and_sasl_ssl() -> None:
    plain = client_params(_params())
    assert plain["bootstrap_servers"] == ["k:9092"] and plain["request_timeout_ms"] == 5000
    assert not any(k.startswith(("sasl", "ssl")) for k in plain)
    secure = client_params(
        _params(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="admin",
            sasl_password="s3cret",
            ssl_cafile="/ca.pem",
        )
    )
    assert secure["sasl_plain_username"] == "admin" and secure["sasl_plain_password"] == "s3cret"
    assert secure["ssl_cafile"] == "/ca.pem" and "ssl_certfile" not in secure
    target = describe_target(
        _params(security_protocol="SASL_SSL", sasl_username="admin", sasl_password="s3cret")
    )
    assert "s3cret" not in target and "admin@k:9092" in target


def test_missing_kafka_python_fails_with_missing_required_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible.module_utils.prism_kafka as prism_kafka
    from ansible.module_utils.basic import missing_required_lib

    prism_kafka.ensure_kafka_python(FakeModule())  # installed here: no failure
    monkeypatch.setattr(prism_kafka, "HAS_KAFKA", False)
    monkeypatch.setattr(prism_kafka, "KAFKA_IMPORT_ERROR", "Traceback ... No module named 'kafka'")
    with pytest.raises(FailJson) as err:
        prism_kafka.ensure_kafka_python(FakeModule())
    (kwargs,) = err.value.args
    assert kwargs["msg"] == missing_required_lib("kafka-python")
    assert "No module named 'kafka'" in kwargs["exception"]


# --- requests sent for a plan (a recording stand-in for KafkaAdminClient) --------------------------------


class Result:
    def __init__(self, results: list) -> None:
        self.results = results


class RecordingAdmin:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict]] = []

    def create_topics(self, request: dict, **kw: Any) -> dict:
        self.calls.append(("create_topics", request, kw))
        return {"topics": [{"name": n, "error_code": 0} for n in request]}

    def wait_for_topics(self, names: list, **kw: Any) -> None:
        self.calls.append(("wait_for_topics", names, kw))

    def create_partitions(self, request: dict, **kw: Any) -> Result:
        self.calls.append(("create_partitions", request, kw))
        return Result([])

    def alter_configs(self, resources: list, **kw: Any) -> dict:
        self.calls.append(("alter_configs", resources, kw))
        return {"topic": {r.name: "OK" for r in resources}}

    def delete_topics(self, names: list, **kw: Any) -> dict:
        self.calls.append(("delete_topics", names, kw))
        return {"topics": [{"name": n, "error_code": 0} for n in names]}


def _mixed_plan() -> Any:
    current = {
        "grow": state("grow", partitions=1),
        "conf": state("conf", configs={"retention.ms": "1", "segment.ms": "9"}),
        "gone": state("gone"),
    }
    specs = [
        spec("new1"),
        spec("new2", partitions=6, configs={"retention.ms": "5"}),
        spec("new3", partitions=None, rf=None),
        spec("grow", partitions=4),
        spec("conf", configs={"retention.ms": "2"}),
        spec("gone", state="absent"),
    ]
    return plan_topics(specs, current, purge_configs=True)


@pytest.mark.parametrize("check_mode", [False, True])
def test_one_request_per_kind_of_change(check_mode: bool) -> None:
    from ansible.module_utils.prism_kafka_topics import apply_plan

    admin = RecordingAdmin()
    apply_plan(admin, _mixed_plan(), check_mode)
    kinds = [c[0] for c in admin.calls]
    expected = ["create_topics", "create_partitions", "alter_configs"]
    if not check_mode:
        expected = ["create_topics", "wait_for_topics", "create_partitions", "alter_configs", "delete_topics"]
    assert kinds == expected
    create = admin.calls[0]
    assert sorted(create[1]) == ["new1", "new2", "new3"]  # all missing topics in one CreateTopics
    assert create[1]["new3"] == {"num_partitions": -1, "replication_factor": -1, "configs": {}}
    assert create[1]["new2"]["configs"] == {"retention.ms": "5"}
    for name, _request, kw in admin.calls:
        if name in ("create_topics", "create_partitions", "alter_configs"):
            assert kw["validate_only"] is check_mode, name
    (grow,) = [c for c in admin.calls if c[0] == "create_partitions"]
    assert grow[1] == {"grow": 4}
    (alter,) = [c for c in admin.calls if c[0] == "alter_configs"]
    assert alter[2]["incremental"] is True
    (resource,) = alter[1]
    assert resource.name == "conf"
    assert {k: (int(op), v) for k, (op, v) in resource.configs.items()} == {
        "retention.ms": (0, "2"),  # SET
        "segment.ms": (1, None),  # DELETE (purge)
    }
