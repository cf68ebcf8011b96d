# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connection options and helpers shared by the PRISM PostgreSQL modules.

The options are documented once in the ``prism_postgres`` doc fragment; keep the two in step
(tests/unit compares them).
"""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

PSYCOPG2_IMPORT_ERROR: str | None
try:
    import psycopg2
    import psycopg2.extensions
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
else:
    PSYCOPG2_IMPORT_ERROR = None

HAS_PSYCOPG2 = PSYCOPG2_IMPORT_ERROR is None

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
APPLICATION_NAME = "prism-ansible"


def postgres_argument_spec() -> dict[str, dict[str, Any]]:
    """Return a fresh copy of the connection argument_spec; modules add their own options to it."""
    return {
        "login_host": {"type": "str", "default": "127.0.0.1"},
        "login_port": {"type": "int", "default": 5432},
        "login_user": {"type": "str", "default": "postgres"},
        "login_password": {"type": "str", "no_log": True},
        "login_db": {"type": "str", "default": "postgres"},
        "connect_timeout": {"type": "int", "default": 10},
        "ssl_mode": {"type": "str", "default": "prefer", "choices": list(SSL_MODES)},
        "ca_cert": {"type": "path"},
    }


def connection_params(params: dict[str, Any]) -> dict[str, Any]:
    """Map module parameters to ``psycopg2.connect`` keywords (options left unset are omitted)."""
    conn: dict[str, Any] = {
        "host": params["login_host"],
        "port": params["login_port"],
        "user": params["login_user"],
        "dbname": params["login_db"],
        "connect_timeout": params["connect_timeout"],
        "sslmode": params["ssl_mode"],
        "application_name": APPLICATION_NAME,
    }
    if params.get("login_password") is not None:
        conn["password"] = params["login_password"]
    if params.get("ca_cert"):
        conn["sslrootcert"] = params["ca_cert"]
    return conn


def describe_target(params: dict[str, Any]) -> str:
    """Human-readable connection target for messages (never includes the password)."""
    return "{user}@{host}:{port}/{db}".format(
        user=params["login_user"], host=params["login_host"], port=params["login_port"], db=params["login_db"]
    )


def ensure_psycopg2(module: AnsibleModule) -> None:
    """Fail the module with the standard message when psycopg2 cannot be imported on the managed host."""
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)


def pg_error_text(exc: BaseException) -> str:
    """Return the server's message plus SQLSTATE for a psycopg2 error, or the plain text otherwise."""
    diag = getattr(exc, "diag", None)
    message = getattr(diag, "message_primary", None) or str(exc).strip() or type(exc).__name__
    detail = getattr(diag, "message_detail", None)
    hint = getattr(diag, "message_hint", None)
    text = message
    if detail:
        text += f" DETAIL: {detail}"
    if hint:
        text += f" HINT: {hint}"
    sqlstate = getattr(exc, "pgcode", None)
    if sqlstate:
        text += f" (SQLSTATE {sqlstate})"
    return text


def connect(module: AnsibleModule) -> Any:
    """Open a psycopg2 connection (autocommit off) from the module's connection options or fail clearly."""
    ensure_psycopg2(module)
    try:
        return psycopg2.connect(**connection_params(module.params))
    except psycopg2.Error as exc:
        module.fail_json(
            msg=f"Could not connect to PostgreSQL at {describe_target(module.params)}: {pg_error_text(exc)}. "
            "Check login_host, login_port, login_user, login_password and login_db.",
            exception=traceback.format_exc(),
        )
