"""Create a container again from its own `docker inspect` (low-level Docker API), for the deploy benchmark's
floor (scripts/bench_deploy.py) and the Molecule drift test (molecule/default/tests/conftest.py)."""

from __future__ import annotations

from typing import Any


def create_from_inspect(
    api: Any, attrs: dict, config: dict | None = None, host_config: dict | None = None
) -> str:
    """Create (not start) a container named as in ``attrs``, from its Config and HostConfig, or the given
    edited copies of them, on its network with its aliases. Returns the new container's id."""
    cfg = config if config is not None else attrs["Config"]
    network = next(iter(attrs["NetworkSettings"]["Networks"]))
    aliases = attrs["NetworkSettings"]["Networks"][network].get("Aliases") or []
    created = api.create_container(
        cfg["Image"],
        name=attrs["Name"].lstrip("/"),
        command=cfg.get("Cmd"),
        entrypoint=cfg.get("Entrypoint"),
        environment=cfg.get("Env"),
        user=cfg.get("User") or None,
        labels=cfg.get("Labels"),
        healthcheck=cfg.get("Healthcheck"),
        # "5432/tcp" as (5432, "tcp"): the SDK adds the protocol to a string itself.
        ports=[(int(p.split("/")[0]), p.split("/")[1]) for p in cfg.get("ExposedPorts") or {}],
        host_config=host_config if host_config is not None else attrs["HostConfig"],
        networking_config={"EndpointsConfig": {network: {"Aliases": aliases}}},
    )
    return created["Id"]
