#!/usr/bin/env bash
# Create the project's Python environment (.venv) from uv.lock: ansible, the collections it bundles,
# the client libraries and the test tools, at the pinned versions. Re-running it is a no-op.
# Behind a TLS-intercepting proxy, export SSL_CERT_FILE / PIP_CERT with your CA bundle first;
# with a private index, export UV_INDEX_URL / PIP_INDEX_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}
tools=.cache/tools

if [ ! -x "$tools/bin/uv" ] || [ "$("$tools/bin/uv" --version | awk '{print $2}')" != "$UV_VERSION" ]; then
    echo "bootstrap: installing uv $UV_VERSION into $tools"
    "$PYTHON" -m venv "$tools"
    "$tools/bin/pip" install --quiet "uv==$UV_VERSION"
fi
echo "bootstrap: syncing .venv from uv.lock"
UV_CACHE_DIR=${UV_CACHE_DIR:-$PWD/.cache/uv} "$tools/bin/uv" sync --frozen --python "$PYTHON"
