# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis check: the app user's operations, and the eviction and persistence settings read as the stats user."""

from __future__ import annotations

from ansible.module_utils.prism_acceptance import expect
from ansible.module_utils.prism_acceptance_checks.stack import Stack


def check_redis_operations(stack: Stack) -> str:
    app = stack.redis()  # NOT RUN HERE when Redis is not deployed
    conf = stack.services.redis or {}
    prefix = stack.ns.key_prefix
    key, hkey = prefix + "string", prefix + "hash"
    expect(app.set(key, "value-1", ex=120) is True, "SET did not answer OK")
    expect(app.get(key) == "value-1", f"GET {key} answered {app.get(key)!r}")
    ttl = app.ttl(key)
    expect(0 < ttl <= 120, f"TTL {key} is {ttl}, expected 1..120")
    expect(app.expire(key, 30) is True and 0 < app.ttl(key) <= 30, "EXPIRE did not shorten the TTL")
    app.hset(hkey, mapping={"task": "t-1", "status": "running", "retries": "0"})
    app.expire(hkey, 120)
    expect(app.hincrby(hkey, "retries", 2) == 2, "HINCRBY did not count")
    got = app.hgetall(hkey)
    expect(got == {"task": "t-1", "status": "running", "retries": "2"}, f"HGETALL answered {got}")
    expect(app.delete(key, hkey) == 2 and app.exists(key, hkey) == 0, "DEL did not remove both keys")

    stats = stack.redis_stats()
    policy = stats.config_get("maxmemory-policy").get("maxmemory-policy")
    maxmemory = int(stats.config_get("maxmemory").get("maxmemory", 0))
    expect(
        policy == conf["maxmemory_policy"],
        f"maxmemory-policy is {policy}, expected {conf['maxmemory_policy']}",
    )
    expect(maxmemory > 0, "maxmemory is 0 (unlimited): the eviction policy never acts")
    persistence = stats.info("persistence")
    parts = [f"eviction {policy} at maxmemory {maxmemory}"]
    if conf["appendonly"]:
        expect(
            persistence.get("aof_enabled") == 1, f"AOF is off (aof_enabled={persistence.get('aof_enabled')})"
        )
        expect(
            persistence.get("aof_last_write_status") == "ok",
            f"aof_last_write_status {persistence.get('aof_last_write_status')}",
        )
        parts.append("AOF on, last write ok")
    if conf["rdb_save"]:
        save = stats.config_get("save").get("save", "")
        expect(save.strip() != "", "RDB save points are empty")
        expect(
            persistence.get("rdb_last_bgsave_status") == "ok",
            f"rdb_last_bgsave_status {persistence.get('rdb_last_bgsave_status')}",
        )
        parts.append(f"RDB save '{save}', last bgsave ok")
    return "SET/GET/TTL/EXPIRE/HSET/HINCRBY/HGETALL/DEL as " + conf["user"] + "; " + ", ".join(parts)
