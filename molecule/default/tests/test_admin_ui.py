"""Admin UIs as deployed by site.yml. pgAdmin is asked over HTTP the way a browser does: the login form
with its CSRF token, the pre-registered PRISM server, and a real connection to the PRISM database.
Redis Insight and Kafka UI cannot be built here; where their image is missing they are skipped with the
reason ("not run here: ..."), never passed."""

from __future__ import annotations

import json
import re
import socket

import pytest
import requests
from conftest import PREFIX, assert_healthy_and_hardened, assert_loopback_only, inspect, secret

PGADMIN_PORT = 15050
REDISINSIGHT_PORT = 15540
KAFKA_UI_PORT = 18080
BASE = f"http://127.0.0.1:{PGADMIN_PORT}"
EMAIL = "admin@prism.local"
SERVER_NAME = "PRISM orchestration DB"
CSRF = re.compile(r'"csrfToken":\s*"([^"]+)"')


def _csrf(session: requests.Session) -> str:
    page = session.get(BASE + "/login", timeout=10)
    page.raise_for_status()
    match = CSRF.search(page.text)
    assert match, "no csrfToken in the login page"
    return match.group(1)


def _login(password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    token = _csrf(session)
    # The browser keeps the form's token for its API calls, in pgAdmin's CSRF header.
    session.headers["X-pgA-CSRFToken"] = token
    answer = session.post(
        BASE + "/authenticate/login",
        data={"email": EMAIL, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    return session, answer


@pytest.fixture(scope="module")
def pgadmin() -> requests.Session:
    session, answer = _login(secret("admin_ui_pgadmin_password"))
    assert answer.status_code == 302 and not answer.headers["Location"].startswith("/login"), answer.headers
    return session


@pytest.fixture(scope="module")
def prism_server(pgadmin) -> tuple[int, dict]:
    groups = pgadmin.get(BASE + "/browser/server_group/nodes/", timeout=10).json()["data"]
    for group in groups:
        answer = pgadmin.get(BASE + f"/browser/server/nodes/{group['_id']}", timeout=10)
        if answer.status_code == 410:  # a group without servers
            continue
        answer.raise_for_status()
        for server in answer.json()["result"]:
            if server["label"] == SERVER_NAME:
                return group["_id"], server
    pytest.fail(f"{SERVER_NAME!r} is not in pgAdmin's server list: {groups}")


def _missing_image(host, service: str) -> str | None:
    """The reason a UI is not running here, or None when its container runs."""
    name = f"{PREFIX}_{service}"
    if host.run("docker inspect %s", name).rc == 0:
        return None
    return (
        f"not run here: {name} was not started because its image is not on this host "
        "(no registry reachable, no archive in prism_image_archive_dir; the status table names the tarball)"
    )


def test_pgadmin_is_healthy_hardened_and_on_loopback_only(host):
    container = assert_healthy_and_hardened(
        host, f"{PREFIX}_pgadmin", f"{PREFIX}_pgadmin_data", "/var/lib/pgadmin"
    )
    assert container["HostConfig"]["CapDrop"] == ["ALL"]
    assert container["Config"]["User"] == "5050"
    assert_loopback_only(host, f"{PREFIX}_pgadmin", 80, PGADMIN_PORT)


def test_pgadmin_secrets_are_not_in_the_container_config(host):
    container = inspect(host, f"{PREFIX}_pgadmin")
    config = json.dumps(container["Config"])
    assert secret("admin_ui_pgadmin_password") not in config
    assert "PGADMIN_DEFAULT_PASSWORD_FILE=" in config


def test_pgadmin_requires_login():
    answer = requests.get(BASE + "/browser/", allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    api = requests.get(BASE + "/browser/server_group/nodes/", allow_redirects=False, timeout=10)
    assert api.status_code in (302, 401)


def test_pgadmin_login_without_csrf_token_is_refused():
    answer = requests.post(
        BASE + "/authenticate/login",
        data={"email": EMAIL, "password": secret("admin_ui_pgadmin_password")},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (400, 401) or answer.headers.get("Location", "").startswith("/login")


def test_pgadmin_wrong_login_password_is_refused():
    session, answer = _login("not-the-password-0123456789")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert session.get(BASE + "/browser/", allow_redirects=False, timeout=10).status_code == 302


def test_pgadmin_login_opens_the_browser(pgadmin):
    answer = pgadmin.get(BASE + "/browser/", allow_redirects=False, timeout=10)
    assert answer.status_code == 200
    assert "pgAdmin" in answer.text


def test_prism_database_is_pre_registered_without_password(pgadmin, prism_server):
    gid, server = prism_server
    props = pgadmin.get(BASE + f"/browser/server/obj/{gid}/{server['_id']}", timeout=10).json()
    assert props["host"] == "postgres"
    assert int(props["port"]) == 5432
    assert props["db"] == "prism"
    assert props["username"] == "prism_app"
    assert not props.get("save_password")
    assert server["connected"] is False or server["connected"] is True


def test_connect_to_prism_database(pgadmin, prism_server):
    gid, server = prism_server
    answer = pgadmin.post(
        BASE + f"/browser/server/connect/{gid}/{server['_id']}",
        json={"password": secret("postgres_app_password")},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["connected"] is True
    databases = pgadmin.get(BASE + f"/browser/database/nodes/{gid}/{server['_id']}", timeout=10).json()[
        "data"
    ]
    assert "prism" in [d["label"] for d in databases]
    pgadmin.delete(BASE + f"/browser/server/connect/{gid}/{server['_id']}", timeout=10)


def test_connect_with_wrong_database_password_is_refused(pgadmin, prism_server):
    gid, server = prism_server
    answer = pgadmin.post(
        BASE + f"/browser/server/connect/{gid}/{server['_id']}",
        json={"password": "not-the-password-0123456789"},
        timeout=30,
    )
    assert answer.status_code != 200 or answer.json().get("data", {}).get("connected") is not True
    assert "password authentication failed" in answer.text


def test_redisinsight(host):
    reason = _missing_image(host, "redisinsight")
    if reason:
        print(reason)
        pytest.skip(reason)
    assert_loopback_only(host, f"{PREFIX}_redisinsight", 5540, REDISINSIGHT_PORT)
    assert requests.get(f"http://127.0.0.1:{REDISINSIGHT_PORT}/api/health", timeout=10).ok
    databases = requests.get(f"http://127.0.0.1:{REDISINSIGHT_PORT}/api/databases", timeout=10).json()
    assert any(d.get("host") == "redis" and int(d.get("port")) == 6379 for d in databases)


def test_kafka_ui(host):
    reason = _missing_image(host, "kafka_ui")
    if reason:
        print(reason)
        pytest.skip(reason)
    assert_loopback_only(host, f"{PREFIX}_kafka_ui", 8080, KAFKA_UI_PORT)
    anonymous = requests.get(
        f"http://127.0.0.1:{KAFKA_UI_PORT}/api/clusters", allow_redirects=False, timeout=10
    )
    assert anonymous.status_code in (302, 401)
    session = requests.Session()
    login = session.post(
        f"http://127.0.0.1:{KAFKA_UI_PORT}/login",
        data={"username": "admin", "password": secret("admin_ui_kafka_ui_password")},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 302 and "error" not in login.headers.get("Location", "")
    clusters = session.get(f"http://127.0.0.1:{KAFKA_UI_PORT}/api/clusters", timeout=10).json()
    assert [c["name"] for c in clusters] == ["prism"]


def test_ui_ports_refuse_other_addresses():
    """Nothing answers on the host's non-loopback addresses (the UIs bind 127.0.0.1 only)."""
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in addresses - {"127.0.0.1", "127.0.1.1"}:
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, PGADMIN_PORT)) != 0, f"{address}:{PGADMIN_PORT} answers"
