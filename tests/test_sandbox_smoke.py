"""The sandbox answers all five sync endpoints over loopback HTTP."""

from __future__ import annotations

import requests

from dialfire_sandbox import Sandbox


def _get(sb: Sandbox, path: str, **params: str) -> requests.Response:
    return requests.get(
        f"{sb.url}/api/campaigns/{sb.campaign_id}/{path}",
        params=params,
        headers={"Authorization": f"Bearer {sb.token}"},
        timeout=10,
    )


def test_all_five_endpoints_answer_with_the_documented_shapes(sandbox: Sandbox) -> None:
    fields = _get(sandbox, "fields/list").json()
    assert any(f["name"] == "Geburtstag vom GF/Inhaber" for f in fields)

    listing = _get(sandbox, "contacts/list", limit="1000").json()
    assert listing["count"] == 60 == len(listing["results"])
    assert "cursor" not in listing
    ids = [item["id"] for item in listing["results"]]

    fetched = requests.post(
        f"{sandbox.url}/api/campaigns/{sandbox.campaign_id}/contacts/",
        params={"include_md5": "true"},
        data=f'["{ids[0]}", "{ids[1]}", "UNKNOWN234567892"]',
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    ).json()
    assert sorted(c["$id"] for c in fetched) == sorted(ids[:2])
    md5s = {item["id"]: item["md5"] for item in listing["results"]}
    assert all(c["$md5"] == md5s[c["$id"]] for c in fetched)

    feed = _get(sandbox, "contacts/transactions/", **{"from": "2020-01-01T00:00:00.000"}).json()
    assert feed["count"] > 60
    fired, md5, contact_id = feed["results"][0].split("|")
    assert contact_id in md5s and len(md5) == 32 and fired.endswith("Z")

    calls = _get(sandbox, "inbound/calls/", **{"from": ""}).json()
    assert calls["count"] == 20 and calls["results"][0]["id"]


def test_expected_view_covers_every_contact(sandbox: Sandbox) -> None:
    rows = sandbox.expected()
    assert len(rows["contacts"]) == 60
    assert rows["transactions"] and rows["connections"] and rows["recordings"]
    assert len(rows["inbound_calls"]) == 20
