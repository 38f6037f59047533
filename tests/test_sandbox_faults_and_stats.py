"""Injected faults (latency, 5xx, 429 with Retry-After, dropped connections, non-JSON bodies)
and request statistics per endpoint."""

from __future__ import annotations

import time

import pytest
import requests

from dialfire_sandbox import Sandbox
from tests.support.sandbox import SandboxHTTP


def test_error_faults_are_consumed_in_order_then_success(sandbox: Sandbox,
                                                         sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(endpoint="fields", kind="error", count=2, status=502)
    sandbox.add_fault(endpoint="fields", kind="rate_limit", retry_after=3)
    statuses = [sandbox_http.get("fields/list") for _ in range(4)]
    assert [r.status_code for r in statuses] == [502, 502, 429, 200]
    assert statuses[0].headers["Content-Type"].startswith("text/plain")
    assert statuses[2].headers["Retry-After"] == "3"
    assert statuses[3].json()


def test_faults_only_hit_their_endpoint(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(endpoint="change_feed", kind="error")
    assert sandbox_http.get("contacts/list").status_code == 200
    assert sandbox_http.get("contacts/transactions/", **{"from": ""}).status_code == 503
    assert sandbox_http.get("contacts/transactions/", **{"from": ""}).status_code == 200


def test_dropped_connection(sandbox: Sandbox) -> None:
    sandbox.add_fault(endpoint="contacts_fetch", kind="drop")
    http = SandboxHTTP(sandbox)
    with pytest.raises(requests.ConnectionError):
        http.post_contacts([sandbox.world.contact_id(0)])
    assert http.post_contacts([sandbox.world.contact_id(0)]).status_code == 200


def test_non_json_body_on_success(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(endpoint="inbound_calls", kind="non_json")
    response = sandbox_http.get("inbound/calls/", **{"from": ""})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_latency(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(endpoint="*", kind="latency", latency_ms=300)
    started = time.monotonic()
    assert sandbox_http.get("fields/list").status_code == 200
    slow = time.monotonic() - started
    started = time.monotonic()
    sandbox_http.get("fields/list")
    fast = time.monotonic() - started
    assert slow >= 0.3 > fast


def test_clear_faults(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(kind="error", count=100)
    sandbox.clear_faults()
    assert sandbox_http.get("fields/list").status_code == 200


def test_invalid_fault_is_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="kind"):
        sandbox.add_fault(kind="explode")
    with pytest.raises(ValueError, match="endpoint"):
        sandbox.add_fault(endpoint="contacts")


def test_faults_over_the_control_api(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    added = sandbox_http.control("POST", "faults", {"endpoint": "contacts_list",
                                                    "kind": "rate_limit", "count": 2,
                                                    "retry_after": 0.5})
    assert added["added"]["count"] == 2
    assert sandbox_http.control("GET", "faults")["faults"][0]["kind"] == "rate_limit"
    first = sandbox_http.get("contacts/list")
    assert first.status_code == 429 and first.headers["Retry-After"] == "0.5"
    sandbox_http.control("DELETE", "faults")
    assert sandbox_http.get("contacts/list").status_code == 200
    bad = requests.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "nope"}, timeout=10)
    assert bad.status_code == 400


def test_stats_count_requests_and_responses_per_endpoint(sandbox: Sandbox,
                                                         sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(endpoint="contacts_list", kind="error")
    sandbox_http.get("contacts/list")
    sandbox_http.get("contacts/list")
    sandbox_http.post_contacts([])
    sandbox_http.get("contacts/transactions/", **{"from": ""})
    requests.get(f"{sandbox.url}/api/campaigns/{sandbox.campaign_id}/fields/list", timeout=10)
    stats = sandbox.stats()
    assert stats["requests"] == {"fields": 1, "contacts_list": 2, "contacts_fetch": 1,
                                 "change_feed": 1, "inbound_calls": 0}
    assert stats["responses"]["contacts_list"] == {"503": 1, "200": 1}
    assert stats["responses"]["fields"] == {"403": 1}
    assert sandbox_http.control("GET", "stats") == stats
    sandbox_http.control("POST", "stats/reset")
    assert sum(sandbox.stats()["requests"].values()) == 0
    sandbox_http.get("inbound/calls/")
    sandbox.reset_stats()
    assert sandbox.stats()["requests"]["inbound_calls"] == 0


def test_malformed_feed_entries(sandbox: Sandbox, sandbox_http: SandboxHTTP) -> None:
    sandbox.add_fault(endpoint="change_feed", kind="malformed")
    page = sandbox_http.get("contacts/transactions/", **{"from": "", "limit": 10}).json()
    assert page["count"] == len(page["results"]) == 13
    assert sum(len(e.split("|")) != 3 or "" in e.split("|") for e in page["results"]) == 3
    clean = sandbox_http.get("contacts/transactions/", **{"from": "", "limit": 10}).json()
    assert clean["count"] == 10
    with pytest.raises(ValueError, match="change feed"):
        sandbox.add_fault(endpoint="fields", kind="malformed")
