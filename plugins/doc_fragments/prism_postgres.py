# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of the PRISM PostgreSQL modules (argument_spec: module_utils/prism_postgres.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the PostgreSQL server, as seen from the managed host.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - TCP port of the PostgreSQL server.
    type: int
    default: 5432
  login_user:
    description:
      - Role the module connects as. It needs the privileges the migrations use (usually the database owner
        or a superuser).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Leave unset to use libpq's other sources (C(PGPASSWORD), C(~/.pgpass)).
    type: str
  login_db:
    description:
      - Database to connect to.
    type: str
    default: postgres
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: int
    default: 10
  ssl_mode:
    description:
      - Whether and how strictly to use TLS; see the libpq C(sslmode) documentation.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - File with the certificate authority certificate(s) used to verify the server with
        O(ssl_mode=verify-ca) or O(ssl_mode=verify-full).
    type: path
requirements:
  - psycopg2 (C(psycopg2-binary) is fine) on the managed host
notes:
  - The password is never included in messages or results.
"""
