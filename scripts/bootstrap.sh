#!/usr/bin/env bash
# Create the project's Python environment (.venv) from uv.lock: ansible, the collections it bundles,
# the client libraries and the test tools, at the pinned versions. Re-running it is a no-op.
#
# Inputs (environment):
#   PYTHON         the interpreter, Python 3.11, 3.12 or 3.13 (default: python3). One uv.lock serves all three.
#   SSL_CERT_FILE  a PEM CA bundle to trust for PyPI, e.g. a TLS-intercepting proxy's CA; pip (PIP_CERT,
#                  unless set) and uv use it. Unset: pip and uv trust the host's certificate store, so a
#                  proxy CA installed there (update-ca-certificates) is enough.
#   UV_INDEX_URL / PIP_INDEX_URL   a private package index.
#   UV_CACHE_DIR   uv's download cache (default .cache/uv); may be shared between clones and machines.
# On a fresh Debian or Ubuntu host the interpreter's venv module is missing (python3.X-venv): as root,
# bootstrap installs it with apt-get; otherwise it stops and names the package.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}
tools=.cache/tools

die() {
    echo "bootstrap: $*" >&2
    exit 1
}

command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on this host. Fix: apt-get install python3" \
    "(Debian 12 ships 3.11, Ubuntu 24.04 3.12, Debian 13 3.13), or set PYTHON to a Python 3.11, 3.12 or 3.13."
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || die "'$PYTHON' does not run."
# The interpreter itself, so uv below uses exactly the one checked here: not a wrapper such as a pyenv shim,
# and not .venv/bin/python3, which `make` finds first on its PATH once .venv exists.
PYTHON=$("$PYTHON" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
case $pyver in
    3.11 | 3.12 | 3.13) ;;
    *) die "'$PYTHON' is Python $pyver; uv.lock is for 3.11, 3.12 and 3.13. Fix: set PYTHON to one of those." ;;
esac

# Debian and Ubuntu split the venv module (and the pip wheel it installs) into pythonX.Y-venv.
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    pkg=python$pyver-venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing $pkg (the venv module of $PYTHON) with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
        "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || die "$pkg is installed but '$PYTHON' still has no venv module."
    else
        die "'$PYTHON' has no venv module. Fix: apt-get install $pkg (as root), or set PYTHON to a Python with venv."
    fi
fi

if [ -n "${SSL_CERT_FILE:-}" ]; then
    [ -r "$SSL_CERT_FILE" ] || die "SSL_CERT_FILE is '$SSL_CERT_FILE' but no such readable file. Fix: point it at your CA bundle (PEM) or unset it."
    export PIP_CERT=${PIP_CERT:-$SSL_CERT_FILE}
else
    # The defaults of pip (certifi) and uv (bundled Mozilla roots) ignore the host's store, where a plant
    # installs its proxy's CA (update-ca-certificates).
    export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-true}
    if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
        export PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
    fi
fi

network_fix="Behind a TLS-intercepting proxy, set SSL_CERT_FILE to its CA bundle (or install the CA with
update-ca-certificates); with a private index, set PIP_INDEX_URL and UV_INDEX_URL."
if [ ! -x "$tools/bin/uv" ] || [ "$("$tools/bin/uv" --version | awk '{print $2}')" != "$UV_VERSION" ]; then
    echo "bootstrap: installing uv $UV_VERSION into $tools"
    rm -rf "$tools"
    "$PYTHON" -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION" ||
        die "pip could not install uv $UV_VERSION (see above). $network_fix"
fi
echo "bootstrap: syncing .venv from uv.lock with $PYTHON (Python $pyver)"
UV_CACHE_DIR=${UV_CACHE_DIR:-$PWD/.cache/uv} "$tools/bin/uv" sync --frozen --python "$PYTHON" ||
    die "uv could not sync .venv from uv.lock (see above). $network_fix"
