# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of the PRISM Kafka modules (argument_spec: module_utils/prism_kafka.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  bootstrap_servers:
    description:
      - C(host:port) of one or more brokers, as seen from the managed host. The client learns the rest of the
        cluster from them (the brokers' advertised listeners must be reachable too).
    type: list
    elements: str
    default: ["127.0.0.1:9092"]
  security_protocol:
    description:
      - Protocol of the listener behind O(bootstrap_servers).
    type: str
    default: PLAINTEXT
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
  sasl_mechanism:
    description:
      - SASL mechanism; required with O(security_protocol=SASL_PLAINTEXT) or O(security_protocol=SASL_SSL).
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_username:
    description:
      - SASL user name; required with the SASL protocols.
    type: str
  sasl_password:
    description:
      - Password of O(sasl_username); required with the SASL protocols.
    type: str
  ssl_cafile:
    description:
      - PEM file of the certificate authorities that sign the brokers' certificates (SSL and SASL_SSL).
    type: path
  ssl_certfile:
    description:
      - PEM client certificate, for brokers that require client authentication (SSL and SASL_SSL).
    type: path
  ssl_keyfile:
    description:
      - PEM private key of O(ssl_certfile).
    type: path
  request_timeout:
    description:
      - Seconds to wait for the first connection and for each admin request.
    type: int
    default: 30
requirements:
  - kafka-python >= 3.0 on the managed host
notes:
  - The password is never included in messages or results.
"""
