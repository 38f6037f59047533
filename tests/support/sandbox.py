"""Sandbox fixtures: an emulated Dialfire campaign on 127.0.0.1, stopped after the test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from dialfire_sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A small default campaign: seed 7, 60 contacts."""
    with Sandbox(seed=7, contacts=60) as sb:
        yield sb


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Call with `Sandbox` keyword arguments to get a started sandbox; all stop at teardown."""
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        sb = Sandbox(**kwargs).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


class SandboxHTTP:
    """Plain HTTP against a sandbox, as a client talks to Dialfire (for the sandbox's tests)."""

    def __init__(self, sb: Sandbox, token: str | None = None) -> None:
        self.sb = sb
        self.base = f"{sb.url}/api/campaigns/{sb.campaign_id}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or sb.token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.base}/{path}", params=params, timeout=30)

    def post_contacts(self, ids: list[str], include_md5: bool = True) -> requests.Response:
        params = {"include_md5": "true"} if include_md5 else {}
        return self.session.post(f"{self.base}/contacts/", params=params, data=json.dumps(ids),
                                 timeout=30)

    def pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of a cursor-paginated endpoint, following cursors until the last page."""
        pages = []
        cursor = None
        while True:
            response = self.get(path, **params, **({"cursor": cursor} if cursor else {}))
            response.raise_for_status()
            page = response.json()
            pages.append(page)
            cursor = page.get("cursor")
            if not cursor:
                return pages
            assert len(pages) < 10_000, "cursor loop"

    def feed(self, **params: Any) -> list[str]:
        return [e for p in self.pages("contacts/transactions/", **params) for e in p["results"]]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.sb.url}/_sandbox/{path}", json=body,
                                    timeout=60)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def sandbox_http(sandbox: Sandbox) -> SandboxHTTP:
    return SandboxHTTP(sandbox)
