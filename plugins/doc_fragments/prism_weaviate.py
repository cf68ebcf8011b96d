# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of the PRISM Weaviate modules (argument_spec: module_utils/prism_weaviate.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  weaviate_host:
    description:
      - Host name or address of the Weaviate server, as seen from the managed host (REST and gRPC).
    type: str
    default: 127.0.0.1
  weaviate_port:
    description:
      - Port of the REST API.
    type: int
    default: 8080
  weaviate_grpc_port:
    description:
      - Port of the gRPC API (the client v4 queries and imports through it).
    type: int
    default: 50051
  weaviate_secure:
    description:
      - Use HTTPS and TLS gRPC.
    type: bool
    default: false
  weaviate_api_key:
    description:
      - API key (AUTHENTICATION_APIKEY_ALLOWED_KEYS of the server). Unset connects anonymously, which a
        PRISM server refuses.
    type: str
  weaviate_timeout:
    description:
      - Seconds for the connection checks, each query and each batch request.
    type: int
    default: 30
requirements:
  - weaviate-client >= 4.10 on the managed host
notes:
  - The API key is never included in messages or results.
"""
