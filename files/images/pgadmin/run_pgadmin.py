# The WSGI entry of gunicorn, as in the upstream image (pkg/docker/run_pgadmin.py): server mode.
import builtins

builtins.SERVER_MODE = True

from pgAdmin4 import app  # noqa: E402,F401
