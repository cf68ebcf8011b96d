"""The lag arithmetic of the stack's Kafka exporter (files/images/kafka_exporter/prism_kafka_exporter.py) and
its rendering under kafka_exporter's metric names. The exporter against a real broker is
tests/integration/test_kafka_lag_exporter.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "files/images/kafka_exporter/prism_kafka_exporter.py"
spec = importlib.util.spec_from_file_location("prism_kafka_exporter", SOURCE)
assert spec and spec.loader
exporter = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = exporter  # dataclasses look their module up there
spec.loader.exec_module(exporter)


@pytest.mark.parametrize(
    ("newest", "committed", "lag"),
    [(100, 40, 60), (100, 100, 0), (0, 0, 0), (5, 7, 0)],
    ids=["behind", "caught-up", "empty", "commit-read-after-log-end"],
)
def test_partition_lag_is_log_end_minus_commit_and_never_negative(
    newest: int, committed: int, lag: int
) -> None:
    assert exporter.partition_lag(newest, committed) == lag


def test_group_lags_per_partition_leave_out_what_has_no_lag_to_report() -> None:
    newest = {("orch.a", 0): 10, ("orch.a", 1): 20, ("orch.b", 0): 5}
    committed = {
        "g2": {("orch.b", 0): 5},
        "g1": {("orch.a", 1): 15, ("orch.a", 0): 4, ("gone", 0): 3, ("orch.b", 0): -1},
    }
    lags = exporter.group_lags(committed, newest)
    assert [(x.group, x.topic, x.partition, x.committed, x.lag) for x in lags] == [
        ("g1", "orch.a", 0, 4, 6),
        ("g1", "orch.a", 1, 15, 5),
        ("g2", "orch.b", 0, 5, 0),
    ]
    assert exporter.sums(lags) == {("g1", "orch.a"): (19, 11), ("g2", "orch.b"): (5, 0)}


def test_render_uses_kafka_exporter_names_and_labels() -> None:
    snapshot = exporter.Snapshot(
        brokers=3,
        partitions={"orch.a": 2},
        newest={("orch.a", 0): 10, ("orch.a", 1): 20},
        oldest={("orch.a", 0): 0, ("orch.a", 1): 2},
        committed={"g1": {("orch.a", 0): 4}},
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in exporter.render(snapshot)
        for s in family.samples
    }
    assert samples[("kafka_brokers", ())] == 3
    assert samples[("kafka_topic_partitions", (("topic", "orch.a"),))] == 2
    assert samples[("kafka_topic_partition_current_offset", (("partition", "1"), ("topic", "orch.a")))] == 20
    assert samples[("kafka_topic_partition_oldest_offset", (("partition", "1"), ("topic", "orch.a")))] == 2
    group = (("consumergroup", "g1"), ("partition", "0"), ("topic", "orch.a"))
    assert samples[("kafka_consumergroup_current_offset", group)] == 4
    assert samples[("kafka_consumergroup_lag", group)] == 6
    assert samples[("kafka_consumergroup_lag_sum", (("consumergroup", "g1"), ("topic", "orch.a")))] == 6
    assert not [k for k in samples if k[0] == "kafka_consumergroup_lag" and ("partition", "1") in k[1]]


def test_kafka_server_is_required_and_named() -> None:
    with pytest.raises(SystemExit):
        exporter.parse_args([])
    assert exporter.parse_args(["--kafka.server=kafka:19092"]).servers == ["kafka:19092"]
