"""Authentication (Bearer and access_token), 403/404 as plain text, trailing slashes, Date."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest
import requests

from dialfire_sandbox import Sandbox


def _url(sb: Sandbox, path: str, campaign: str | None = None) -> str:
    return f"{sb.url}/api/campaigns/{campaign or sb.campaign_id}/{path}"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic c2FuZGJveC10b2tlbg=="}])
def test_missing_or_wrong_token_is_a_plain_text_403(sandbox: Sandbox,
                                                    headers: dict[str, str]) -> None:
    response = requests.get(_url(sandbox, "fields/list"), headers=headers, timeout=10)
    assert response.status_code == 403
    assert response.text == "403 - Forbidden"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_token_of_another_campaign_is_refused(sandbox: Sandbox) -> None:
    response = requests.get(_url(sandbox, "fields/list", campaign="ABCDEFGHJKLMNPQR"),
                            headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=10)
    assert response.status_code == 403


def test_access_token_query_parameter_works(sandbox: Sandbox) -> None:
    response = requests.get(_url(sandbox, "fields/list"),
                            params={"access_token": sandbox.token}, timeout=10)
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_custom_token_and_campaign(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(seed=1, contacts=5, campaign_id="CAMPAIGN23456789", token="s3cret")
    ok = requests.get(_url(sb, "contacts/list"), headers={"Authorization": "Bearer s3cret"},
                      timeout=10)
    assert sb.campaign_id == "CAMPAIGN23456789"
    assert ok.status_code == 200 and ok.json()["count"] == 5
    refused = requests.get(_url(sb, "contacts/list"),
                           headers={"Authorization": "Bearer sandbox-token"}, timeout=10)
    assert refused.status_code == 403


@pytest.mark.parametrize("path", ["fields/list", "fields/list/", "contacts/list",
                                  "contacts/list/", "contacts/transactions",
                                  "contacts/transactions/", "inbound/calls", "inbound/calls/"])
def test_paths_with_and_without_trailing_slash(sandbox: Sandbox, path: str) -> None:
    response = requests.get(_url(sandbox, path), params={"access_token": sandbox.token},
                            timeout=10)
    assert response.status_code == 200, response.text


def test_contacts_post_with_and_without_slash(sandbox: Sandbox) -> None:
    for path in ("contacts", "contacts/"):
        response = requests.post(_url(sandbox, path), params={"access_token": sandbox.token},
                                 data="[]", timeout=10)
        assert response.status_code == 200 and response.json() == []


def test_unknown_route_is_plain_text_404_and_wrong_method_405(sandbox: Sandbox) -> None:
    missing = requests.get(_url(sandbox, "nothing/here"), params={"access_token": sandbox.token},
                           timeout=10)
    assert missing.status_code == 404 and missing.text == "404 - Not Found"
    assert requests.get(f"{sandbox.url}/", timeout=10).status_code == 404
    wrong = requests.post(_url(sandbox, "fields/list"), params={"access_token": sandbox.token},
                          timeout=10)
    assert wrong.status_code == 405


def test_every_response_has_a_date_header_from_the_virtual_clock(sandbox: Sandbox) -> None:
    responses = [
        requests.get(_url(sandbox, "fields/list"), timeout=10),  # 403
        requests.get(_url(sandbox, "fields/list"), params={"access_token": sandbox.token},
                     timeout=10),
        requests.get(f"{sandbox.url}/_sandbox/clock", timeout=10),
    ]
    for response in responses:
        served = parsedate_to_datetime(response.headers["Date"])
        assert abs((served - sandbox.now()).total_seconds()) < 5
        assert served.year == 2026 and served.month == 3


def test_the_token_never_appears_in_the_log(sandbox_factory, capfd) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(seed=1, contacts=3, token="very-secret-token", verbose=True)
    requests.get(_url(sb, "fields/list"), params={"access_token": "very-secret-token"},
                 timeout=10)
    requests.get(_url(sb, "fields/list"), headers={"Authorization": "Bearer very-secret-token"},
                 timeout=10)
    err = capfd.readouterr().err
    assert "fields/list" in err
    assert "very-secret-token" not in err
