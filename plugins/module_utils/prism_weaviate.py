# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Weaviate connection options and helpers shared by the PRISM Weaviate modules.

The options are documented once in the ``prism_weaviate`` doc fragment; keep the two in step
(tests/unit compares them).
"""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

WEAVIATE_IMPORT_ERROR: str | None
try:
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout
except ImportError:
    weaviate = None  # type: ignore[assignment]
    WEAVIATE_IMPORT_ERROR = traceback.format_exc()
else:
    WEAVIATE_IMPORT_ERROR = None

HAS_WEAVIATE = WEAVIATE_IMPORT_ERROR is None


def weaviate_argument_spec() -> dict[str, dict[str, Any]]:
    """Return a fresh copy of the connection argument_spec; modules add their own options to it."""
    return {
        "weaviate_host": {"type": "str", "default": "127.0.0.1"},
        "weaviate_port": {"type": "int", "default": 8080},
        "weaviate_grpc_port": {"type": "int", "default": 50051},
        "weaviate_secure": {"type": "bool", "default": False},
        "weaviate_api_key": {"type": "str", "no_log": True},
        "weaviate_timeout": {"type": "int", "default": 30},
    }


def describe_target(params: dict[str, Any]) -> str:
    """Human-readable connection target for messages (never includes the key)."""
    scheme = "https" if params["weaviate_secure"] else "http"
    return f"{scheme}://{params['weaviate_host']}:{params['weaviate_port']} (gRPC {params['weaviate_grpc_port']})"


def ensure_weaviate_client(module: AnsibleModule) -> None:
    """Fail the module with the standard message when weaviate-client cannot be imported on the managed host."""
    if not HAS_WEAVIATE:
        module.fail_json(msg=missing_required_lib("weaviate-client"), exception=WEAVIATE_IMPORT_ERROR)


def weaviate_error_text(exc: BaseException) -> str:
    """The exception's class and message, e.g. 'UnexpectedStatusCodeError: ...'."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect(params: dict[str, Any]) -> Any:
    """Open a client (REST and gRPC) from the connection options; raises on failure."""
    timeout = int(params["weaviate_timeout"])
    key = params.get("weaviate_api_key")
    return weaviate.connect_to_custom(
        http_host=params["weaviate_host"],
        http_port=params["weaviate_port"],
        http_secure=params["weaviate_secure"],
        grpc_host=params["weaviate_host"],
        grpc_port=params["weaviate_grpc_port"],
        grpc_secure=params["weaviate_secure"],
        auth_credentials=Auth.api_key(key) if key else None,
        additional_config=AdditionalConfig(timeout=Timeout(init=timeout, query=timeout, insert=timeout)),
    )


def connect_client(module: AnsibleModule) -> Any:
    """Open a client from the module's connection options or fail clearly."""
    ensure_weaviate_client(module)
    try:
        return connect(module.params)
    except Exception as exc:  # the client raises several unrelated types on connect
        module.fail_json(
            msg=f"Could not connect to Weaviate at {describe_target(module.params)}: {weaviate_error_text(exc)}. "
            "Check weaviate_host, weaviate_port, weaviate_grpc_port and weaviate_api_key.",
            exception=traceback.format_exc(),
        )
