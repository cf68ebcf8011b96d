"""Bad Redis input through the real playbook: each run must fail with a message naming the variable and
the fix, and leave the running Redis and its configuration exactly as they were."""

from __future__ import annotations

import json

import yaml
from conftest import PREFIX, ROOT, inspect, run_playbook, secret

NAME = f"{PREFIX}_redis"
CONF_DIR = "/opt/prism-molecule/redis/conf"
# redis_settings is a stack fact (verify reads it too): roles/prism/defaults/main/services.yml.
SETTINGS = yaml.safe_load((ROOT / "roles" / "prism" / "defaults" / "main" / "services.yml").read_text())[
    "redis_settings"
]


def _state(host) -> tuple:
    """What must not change: the container's id and start time, and the rendered configuration."""
    c = inspect(host, NAME)
    files = host.check_output("sha256sum %s/redis.conf %s/users.conf", CONF_DIR, CONF_DIR)
    return c["Id"], c["State"]["StartedAt"], files


def _settings(**changes) -> str:
    """redis_settings as an extra var: the defaults with some keys changed (an inventory replaces the dict)."""
    return json.dumps({"redis_settings": {**SETTINGS, **changes}})


def test_unknown_eviction_policy_is_refused(host):
    before = _state(host)
    result = run_playbook("-e", _settings(**{"maxmemory-policy": "lru-everything"}))
    assert result.rc != 0
    assert "redis_settings.maxmemory-policy" in result.output and "'lru-everything'" in result.output
    assert "allkeys-lru" in result.output  # the fix lists the valid policies
    assert _state(host) == before


def test_maxmemory_above_the_container_limit_is_refused(host):
    before = _state(host)
    result = run_playbook("-e", "redis_memory=1g")
    assert result.rc != 0
    assert "redis_settings.maxmemory" in result.output and "redis_memory 1g" in result.output
    assert "Fix: raise redis_memory" in result.output
    assert _state(host) == before


def test_unparsable_maxmemory_is_refused(host):
    before = _state(host)
    result = run_playbook("-e", _settings(maxmemory="2 gigs"))
    assert result.rc != 0
    assert "redis_settings.maxmemory is '2 gigs'" in result.output
    assert _state(host) == before


def test_missing_password_is_refused(host):
    """A vault inventory (no generated secrets) that forgot the Redis passwords. The PostgreSQL ones are
    given, so that the run gets as far as the redis role."""
    before = _state(host)
    result = run_playbook(
        "-e",
        "prism_secrets_generate=false",
        "-e",
        json.dumps(
            {
                "postgres_superuser_password": secret("postgres_superuser_password"),
                "postgres_app_password": secret("postgres_app_password"),
                "redis_exporter_password": secret("redis_exporter_password"),
            }
        ),
    )
    assert result.rc != 0
    # site.yml's Preflight play (the stack preflight) meets the missing passwords before any host change, and
    # names each one.
    flat = " ".join(result.output.split())
    assert "redis_app_password, redis_admin_password must be set" in flat, result.output[-3000:]
    assert "in the inventory vault" in flat
    assert "redis_exporter_password" not in result.output.split("must be set")[0].splitlines()[-1]
    assert _state(host) == before


def test_short_password_is_refused(host):
    before = _state(host)
    result = run_playbook("-e", "redis_admin_password=tooShort-7f3a")
    assert result.rc != 0
    assert "redis_admin_password must be set and at least 16 characters long" in result.output
    assert "inventory vault" in result.output
    assert "tooShort-7f3a" not in result.output  # the value itself is never shown
    assert _state(host) == before


def test_setting_the_role_owns_is_refused(host):
    before = _state(host)
    result = run_playbook("-e", _settings(**{"protected-mode": False}))
    assert result.rc != 0
    assert "Invalid redis_settings" in result.output and "remove protected-mode" in result.output
    assert _state(host) == before


def test_unknown_setting_is_refused_by_redis_itself(host):
    """A typo in a key: the image's redis-server rejects the candidate file (`validate`), which never
    replaces the deployed one."""
    before = _state(host)
    result = run_playbook("-e", _settings(**{"maxmemory-polcy": "allkeys-lru"}))
    assert result.rc != 0
    assert "failed to validate" in result.output
    assert "maxmemory-polcy" in result.output
    assert _state(host) == before
