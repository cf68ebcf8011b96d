# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka connection options and helpers shared by the PRISM Kafka modules.

The options are documented once in the ``prism_kafka`` doc fragment; keep the two in step
(tests/unit compares them).
"""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

KAFKA_IMPORT_ERROR: str | None
try:
    from kafka.admin import KafkaAdminClient  # kafka-python
except ImportError:
    KafkaAdminClient = None
    KAFKA_IMPORT_ERROR = traceback.format_exc()
else:
    KAFKA_IMPORT_ERROR = None

HAS_KAFKA = KAFKA_IMPORT_ERROR is None

SECURITY_PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SASL_MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
CLIENT_ID = "prism-ansible"


def kafka_argument_spec() -> dict[str, dict[str, Any]]:
    """Return a fresh copy of the connection argument_spec; modules add their own options to it."""
    return {
        "bootstrap_servers": {"type": "list", "elements": "str", "default": ["127.0.0.1:9092"]},
        "security_protocol": {"type": "str", "default": "PLAINTEXT", "choices": list(SECURITY_PROTOCOLS)},
        "sasl_mechanism": {"type": "str", "choices": list(SASL_MECHANISMS)},
        "sasl_username": {"type": "str"},
        "sasl_password": {"type": "str", "no_log": True},
        "ssl_cafile": {"type": "path"},
        "ssl_certfile": {"type": "path"},
        "ssl_keyfile": {"type": "path", "no_log": False},  # the path of the key, not the key
        "request_timeout": {"type": "int", "default": 30},
    }


def kafka_required_if() -> list[tuple[str, str, list[str], bool]]:
    """SASL protocols need a mechanism, a user and a password."""
    return [
        ("security_protocol", "SASL_PLAINTEXT", ["sasl_mechanism", "sasl_username", "sasl_password"], False),
        ("security_protocol", "SASL_SSL", ["sasl_mechanism", "sasl_username", "sasl_password"], False),
    ]


def client_params(params: dict[str, Any]) -> dict[str, Any]:
    """Map module parameters to kafka-python client keywords (options left unset are omitted)."""
    timeout_ms = int(params["request_timeout"]) * 1000
    conf: dict[str, Any] = {
        "bootstrap_servers": list(params["bootstrap_servers"]),
        "security_protocol": params["security_protocol"],
        "client_id": CLIENT_ID,
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
    }
    if params["security_protocol"].startswith("SASL_"):
        conf["sasl_mechanism"] = params["sasl_mechanism"]
        conf["sasl_plain_username"] = params["sasl_username"]
        conf["sasl_plain_password"] = params["sasl_password"]
    if params["security_protocol"] in ("SSL", "SASL_SSL"):
        for option in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if params.get(option):
                conf[option] = params[option]
    return conf


def describe_target(params: dict[str, Any]) -> str:
    """Human-readable connection target for messages (never includes the password)."""
    user = f"{params['sasl_username']}@" if params["security_protocol"].startswith("SASL_") else ""
    return f"{user}{','.join(params['bootstrap_servers'])} ({params['security_protocol']})"


def ensure_kafka_python(module: AnsibleModule) -> None:
    """Fail the module with the standard message when kafka-python cannot be imported on the managed host."""
    if not HAS_KAFKA:
        module.fail_json(msg=missing_required_lib("kafka-python"), exception=KAFKA_IMPORT_ERROR)


def kafka_error_text(exc: BaseException) -> str:
    """The exception's class and message, e.g. 'InvalidConfigurationException: ...'."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect_admin(module: AnsibleModule) -> Any:
    """Open a KafkaAdminClient from the module's connection options or fail clearly."""
    ensure_kafka_python(module)
    try:
        return KafkaAdminClient(**client_params(module.params))
    except Exception as exc:  # kafka-python raises several unrelated types on connect
        module.fail_json(
            msg=f"Could not connect to Kafka at {describe_target(module.params)}: {kafka_error_text(exc)}. "
            "Check bootstrap_servers, security_protocol and the SASL/SSL options.",
            exception=traceback.format_exc(),
        )
