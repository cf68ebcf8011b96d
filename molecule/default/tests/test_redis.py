"""Redis as deployed by site.yml: settings, authentication, ACL, persistence across a kill and exposure,
asked of the real server through its published port with a minimal RESP client (no client library)."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid

import pytest
import yaml
from conftest import (
    PREFIX,
    ROOT,
    assert_healthy_and_hardened,
    assert_loopback_only,
    crash,
    inspect,
    run_playbook,
    secret,
)

REDIS_PORT = 16379
NAME = f"{PREFIX}_redis"
CONF_DIR = "/opt/prism-molecule/redis/conf"
# redis_settings is a stack fact (verify reads it too): roles/prism/defaults/main/services.yml.
SETTINGS = yaml.safe_load((ROOT / "roles" / "prism" / "defaults" / "main" / "services.yml").read_text())[
    "redis_settings"
]
# The commands the app user must not run; each is in Redis's @dangerous category.
DANGEROUS = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "maxmemory"),
    ("DEBUG", "SLEEP", "0"),
    ("KEYS", "*"),
    ("SHUTDOWN",),
]


class RedisError(Exception):
    """An error reply (-ERR, -NOAUTH, -NOPERM ...)."""


class Redis:
    """Just enough RESP2 to talk to the server the way an application does: over TCP, commands as arrays."""

    def __init__(self, user: str | None = None, password: str | None = None, port: int = REDIS_PORT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.sock.makefile("rb")
        if user is not None:
            self.call("AUTH", user, password or "")

    def call(self, *args: str | int):
        parts = [str(a).encode() for a in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self.sock.sendall(payload)
        return self._reply()

    def _reply(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            if rest == "-1":
                return None
            data = self.reader.read(int(rest) + 2)[:-2]
            return data.decode()
        if kind == b"*":
            return None if rest == "-1" else [self._reply() for _ in range(int(rest))]
        raise ValueError(f"unexpected reply {line!r}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture()
def admin():
    conn = Redis("admin", secret("redis_admin_password"))
    yield conn
    conn.close()


@pytest.fixture()
def app():
    conn = Redis("prism_app", secret("redis_app_password"))
    yield conn
    conn.close()


@pytest.fixture()
def exporter():
    conn = Redis("exporter", secret("redis_exporter_password"))
    yield conn
    conn.close()


def test_container_is_healthy_and_hardened(host):
    c = assert_healthy_and_hardened(host, NAME, f"{PREFIX}_redis_data", "/data")
    hc = c["HostConfig"]
    # Beyond the shared guarantees: runs as redis from the start, without capabilities, on a read-only root.
    assert c["Config"]["User"] == "999:999"
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
    assert hc["ReadonlyRootfs"] is True
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/usr/local/etc/redis"]["RW"] is False


def test_no_password_in_the_container_configuration(host):
    """The health probe authenticates, but no password is in `docker inspect`."""
    raw = host.check_output("docker inspect %s", NAME)
    for name in ("redis_app_password", "redis_admin_password", "redis_exporter_password"):
        assert secret(name) not in raw, name
    assert "redis-cli" in json.dumps(json.loads(raw)[0]["Config"]["Healthcheck"]["Test"])


def test_no_cleartext_password_on_disk(host):
    """users.conf holds sha256 hashes (#...) only; redis.conf holds no user at all."""
    users = host.file(f"{CONF_DIR}/users.conf")
    conf = host.file(f"{CONF_DIR}/redis.conf")
    for name in ("redis_app_password", "redis_admin_password", "redis_exporter_password"):
        password = secret(name)
        assert password not in users.content_string and password not in conf.content_string, name
        assert "#" + hashlib.sha256(password.encode()).hexdigest() in users.content_string, name
    assert conf.content_string.startswith("#\n# Ansible managed")
    assert users.mode == 0o640 and users.uid == 999


def test_port_is_bound_to_loopback_only(host):
    assert_loopback_only(host, NAME, 6379, REDIS_PORT)


def test_effective_config_shows_the_seed_values(admin):
    assert admin.call("CONFIG", "GET", "maxmemory") == ["maxmemory", "2147483648"]
    assert admin.call("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "allkeys-lru"]
    assert admin.call("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    assert admin.call("CONFIG", "GET", "appendfsync") == ["appendfsync", "everysec"]
    save = admin.call("CONFIG", "GET", "save")[1]
    assert save == "3600 1 300 100 60 10000", save
    assert admin.call("CONFIG", "GET", "protected-mode") == ["protected-mode", "yes"]
    assert admin.call("CONFIG", "GET", "bind") == ["bind", "0.0.0.0 -::*"]


def test_memory_limit_leaves_headroom_above_maxmemory(host, admin):
    limit = inspect(host, NAME)["HostConfig"]["Memory"]
    maxmemory = int(admin.call("CONFIG", "GET", "maxmemory")[1])
    assert limit == 3 * 1024**3
    assert maxmemory <= limit * 0.75


@pytest.mark.parametrize("command", [("PING",), ("GET", "prism:any"), ("CONFIG", "GET", "maxmemory")])
def test_unauthenticated_clients_get_noauth(command):
    conn = Redis()
    try:
        with pytest.raises(RedisError, match="^NOAUTH"):
            conn.call(*command)
    finally:
        conn.close()


def test_default_user_is_off(admin):
    user = admin.call("ACL", "GETUSER", "default")
    flags = user[user.index("flags") + 1]
    assert "off" in flags and "nopass" not in flags
    conn = Redis()
    try:
        with pytest.raises(RedisError, match="WRONGPASS|disabled"):
            conn.call("AUTH", "default", "")
    finally:
        conn.close()
    assert set(admin.call("ACL", "USERS")) == {"default", "prism_app", "admin", "exporter"}


@pytest.mark.parametrize("command", [c for c in DANGEROUS if c[0] != "DEBUG"], ids=lambda c: c[0])
def test_app_user_gets_noperm(app, command):
    with pytest.raises(RedisError, match="^NOPERM"):
        app.call(*command)
    assert app.call("PING") == "PONG"  # SHUTDOWN really did not happen


def test_app_user_cannot_debug(app):
    """DEBUG is refused to everyone (enable-debug-command no) before the ACL is even consulted; the ACL
    denies it to the app user as well, proven by ACL DRYRUN below."""
    with pytest.raises(RedisError, match="^(NOPERM|ERR DEBUG command not allowed)"):
        app.call("DEBUG", "SLEEP", "0")


@pytest.mark.parametrize("command", DANGEROUS, ids=lambda c: c[0])
def test_app_acl_denies_each_dangerous_command(admin, command):
    answer = admin.call("ACL", "DRYRUN", "prism_app", *command)
    assert f"has no permissions to run the '{command[0].lower()}" in answer, answer


def test_app_user_can_use_the_cache(app):
    key = f"prism:test:{uuid.uuid4().hex}"
    try:
        assert app.call("SET", key, "v1") == "OK"
        assert app.call("GET", key) == "v1"
        assert app.call("EXPIRE", key, 60) == 1
        assert 0 < app.call("TTL", key) <= 60
        assert app.call("HSET", f"{key}:h", "field", "value") == 1
        assert app.call("HGET", f"{key}:h", "field") == "value"
    finally:
        app.call("DEL", key, f"{key}:h")


def test_exporter_user_is_read_only(exporter):
    assert exporter.call("PING") == "PONG"
    assert "redis_version:8.0" in exporter.call("INFO", "server")
    assert exporter.call("CONFIG", "GET", "maxmemory") == ["maxmemory", "2147483648"]
    assert exporter.call("CLIENT", "SETNAME", "redis_exporter") == "OK"
    assert isinstance(exporter.call("SLOWLOG", "LEN"), int)
    assert isinstance(exporter.call("LATENCY", "LATEST"), list)
    for command in [
        ("GET", "prism:any"),
        ("SET", "prism:any", "x"),
        ("CONFIG", "SET", "maxmemory", "1gb"),
        ("CLIENT", "KILL", "ID", "1"),
        ("SLOWLOG", "RESET"),
        ("SCAN", "0"),
        ("FLUSHALL",),
    ]:
        with pytest.raises(RedisError, match="^NOPERM"):
            exporter.call(*command)


def test_key_survives_kill(host, capsys):
    key, value = f"prism:test:durable:{uuid.uuid4().hex}", uuid.uuid4().hex
    app = Redis("prism_app", secret("redis_app_password"))
    try:
        assert app.call("SET", key, value) == "OK"
    finally:
        app.close()
    # appendfsync everysec: past the one-second window the write is on disk, not just in the page cache.
    time.sleep(1.5)
    t0 = time.monotonic()
    crash(host, NAME)
    seconds = time.monotonic() - t0
    # Redis itself is ready within milliseconds; the time is mostly the health probe's interval, since
    # Docker runs the first probe one interval after the start. Printed past pytest's capture, not asserted.
    with capsys.disabled():
        print(f"\n{NAME}: kill -9 -> healthy in {seconds:.1f} s")
    app = Redis("prism_app", secret("redis_app_password"))
    try:
        assert app.call("GET", key) == value
        app.call("DEL", key)
    finally:
        app.close()


def test_data_files_are_owned_by_redis(host):
    listing = host.check_output("docker exec %s ls -ln /data /data/appendonlydir", NAME)
    lines = [line.split() for line in listing.splitlines() if line.startswith(("-", "d"))]
    assert lines and all(fields[2] == "999" for fields in lines), listing
    assert any(line[-1].endswith(".incr.aof") for line in lines), listing


def test_every_setting_is_rendered_from_redis_settings(host):
    """The template renders the one dict generically: each key of redis_settings is a line of redis.conf."""
    lines = host.file(f"{CONF_DIR}/redis.conf").content_string.splitlines()
    for key in SETTINGS:
        assert any(line.startswith(f"{key} ") for line in lines), key
    assert [line for line in lines if line.startswith("save ")] == ["save 3600 1 300 100 60 10000"]


def test_changing_a_setting_restarts_only_redis(host):
    """A redis_settings change from the inventory reaches the server by a restart of Redis alone; the
    next run with the original settings restores it."""
    pg_before = inspect(host, f"{PREFIX}_postgres")["State"]["StartedAt"]
    redis_before = inspect(host, NAME)["State"]["StartedAt"]
    try:
        result = run_playbook("-e", json.dumps({"redis_settings": {**SETTINGS, "loglevel": "verbose"}}))
        assert result.rc == 0, result.output[-3000:]
        assert inspect(host, NAME)["State"]["StartedAt"] != redis_before
        assert inspect(host, f"{PREFIX}_postgres")["State"]["StartedAt"] == pg_before
        conn = Redis("admin", secret("redis_admin_password"))
        try:
            assert conn.call("CONFIG", "GET", "loglevel") == ["loglevel", "verbose"]
        finally:
            conn.close()
    finally:
        restored = run_playbook()
    assert restored.rc == 0, restored.output[-3000:]
    conn = Redis("admin", secret("redis_admin_password"))
    try:
        assert conn.call("CONFIG", "GET", "loglevel") == ["loglevel", "notice"]
    finally:
        conn.close()
