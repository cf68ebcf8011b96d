# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring check: Prometheus targets up and rules loaded, Alertmanager ready, every dashboard query
answering with data, and Grafana healthy when its URL is given."""

from __future__ import annotations

import json
from typing import Any

from ansible.module_utils.prism_acceptance import NotRunHere, concrete_expr, dashboard_queries, expect
from ansible.module_utils.prism_acceptance_checks.stack import Stack

HTTP_TIMEOUT_S = 10


def http_json(url: str) -> Any:
    import requests

    response = requests.get(url, timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def check_monitoring(stack: Stack) -> str:
    import requests

    conf = stack.services.monitoring
    if conf is None:
        raise NotRunHere(stack.services.monitoring_absent)
    prom = conf["prometheus_url"].rstrip("/")
    targets = http_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]
    expect(targets, "Prometheus has no active targets")
    down = [
        f"{t['labels'].get('job')}/{t['labels'].get('instance')}: {t.get('lastError') or t['health']}"
        for t in targets
        if t.get("health") != "up"
    ]
    expect(not down, f"{len(down)} of {len(targets)} targets not up: {'; '.join(down)}")
    groups = http_json(f"{prom}/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g.get("rules", [])]
    expect(rules, "no rules loaded")
    broken = [
        f"{r.get('name')}: {r.get('lastError')}" for r in rules if r.get("health") not in ("ok", "unknown")
    ]
    expect(not broken, f"rules with errors: {'; '.join(broken)}")
    am = conf["alertmanager_url"].rstrip("/")
    ready = requests.get(f"{am}/-/ready", timeout=HTTP_TIMEOUT_S)
    expect(ready.status_code == 200, f"Alertmanager /-/ready answered {ready.status_code}")
    with open(conf["dashboard_file"], encoding="utf-8") as handle:
        dashboard = json.load(handle)
    queries = dashboard_queries(dashboard)
    expect(queries, f"{conf['dashboard_file']} has no panel queries")
    empty = []
    for title, expr in queries:
        answer = requests.get(
            f"{prom}/api/v1/query", params={"query": concrete_expr(expr)}, timeout=HTTP_TIMEOUT_S
        ).json()
        if answer.get("status") != "success":
            empty.append(f"'{title}': {answer.get('error')}")
        elif not answer["data"]["result"]:
            empty.append(f"'{title}': no data for {expr}")
    expect(not empty, f"{len(empty)} of {len(queries)} dashboard queries without data: {'; '.join(empty)}")
    if conf.get("grafana_url"):
        health = http_json(conf["grafana_url"].rstrip("/") + "/api/health")
        expect(health.get("database") == "ok", f"Grafana /api/health: {health}")
    else:
        stack.extra_rows.append(("monitoring: grafana", "NOT RUN HERE", stack.services.grafana_absent))
    return (
        f"{len(targets)} targets up; {len(rules)} rules in {len(groups)} groups loaded; Alertmanager ready; "
        f"{len(queries)} dashboard queries return data"
        + ("; Grafana healthy" if conf.get("grafana_url") else "")
    )
