# Distribution settings of the built image (as upstream's pkg/docker config_distro.py): server mode, data
# in the volume, logs to stdout through gunicorn only, Debian's PostgreSQL 17 client tools.
SERVER_MODE = True
DATA_DIR = "/var/lib/pgadmin"
LOG_FILE = "/dev/null"
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
UPGRADE_CHECK_ENABLED = False
DEFAULT_BINARY_PATHS = {"pg": "/usr/lib/postgresql/17/bin", "pg-17": "/usr/lib/postgresql/17/bin"}

# Upstream's entrypoint appends every PGADMIN_CONFIG_<NAME>=<python literal> to this file; the image's
# root filesystem stays read-only to pgAdmin here, so the same settings are read from the environment.
import ast as _ast  # noqa: E402
import os as _os  # noqa: E402

for _name, _value in _os.environ.items():
    if _name.startswith("PGADMIN_CONFIG_"):
        globals()[_name[len("PGADMIN_CONFIG_") :]] = _ast.literal_eval(_value)
