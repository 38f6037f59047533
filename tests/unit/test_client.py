"""client.py against a scripted HTTP server on 127.0.0.1: retries, Retry-After, errors, secrets."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tap_dialfire.client import (
    DialfireAuthError,
    DialfireClient,
    DialfireConfigError,
    DialfireError,
    DialfireResponseError,
    DialfireUnavailableError,
    parse_http_date,
)

TOKEN = "unit-test-token-123"


class Script:
    """Responses to hand out in order: (status, headers, body)."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            script.seen.append((self.command, self.path, dict(self.headers)))
            status, headers, body = script.responses.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def client(url: str, **kwargs: Any) -> DialfireClient:
    options: dict[str, Any] = {"timeout": 5, "max_tries": 3, "backoff_base": 0.01}
    options.update(kwargs)
    return DialfireClient(api_url=url, campaign_id="CAMPAIGN", token=TOKEN, **options)


def ok(body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return 200, headers, json.dumps(body).encode()


def test_429_waits_for_retry_after_and_bearer_token_is_sent(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses += [(429, {"Retry-After": "0.4"}, b"slow down"), ok([{"type": "field"}])]
    started = time.monotonic()
    assert client(url).fields() == [{"type": "field"}]
    assert time.monotonic() - started >= 0.4
    assert script.seen[0][2]["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in script.seen[0][1], "the token never travels in the URL"


def test_403_is_fatal_names_campaign_and_setting_without_the_token(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.responses.append((403, {}, b"403 - Forbidden"))
    with pytest.raises(DialfireAuthError) as caught:
        client(url).fields()
    message = str(caught.value)
    assert "CAMPAIGN" in message and "campaign_token" in message and "403" in message
    assert TOKEN not in message
    assert len(script.seen) == 1, "a 403 is not retried"


def test_5xx_retries_then_fails_with_one_line(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses += [(503, {}, b"down")] * 3
    with pytest.raises(DialfireUnavailableError) as caught:
        client(url).fetch_contacts(["A"])
    assert "contacts_fetch failed after 3 attempts (HTTP 503)" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_non_json_and_malformed_bodies_name_the_endpoint(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses += [(200, {}, b"<html>oops</html>")] * 2
    with pytest.raises(DialfireUnavailableError, match=r"fields .*not JSON"):
        client(url, max_tries=2).fields()
    script.responses.append(ok({"unexpected": True}))
    with pytest.raises(DialfireResponseError, match="contacts_list sent a malformed response"):
        list(client(url).list_contacts())


def test_pages_follow_the_cursor_until_it_is_missing(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses += [
        ok({"count": 1, "results": ["a"], "cursor": "c1"}),
        ok({"count": 1, "results": ["b"], "cursor": ""}),
    ]
    pages = list(client(url).change_feed(from_="2026-03-02T08:55:00.000",
                                         filters={"hi": "true"}))
    assert [p.results for p in pages] == [["a"], ["b"]]
    assert pages[0].server_time is not None, "the Date header is the server's clock"
    assert "cursor=c1" in script.seen[1][1] and "hi=true" in script.seen[0][1]


def test_a_repeated_cursor_stops_instead_of_looping(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses += [ok({"results": [], "cursor": "same"})] * 2
    with pytest.raises(DialfireResponseError, match="repeated a cursor"):
        list(client(url).inbound_calls(from_=""))


def test_http_dates_parse_to_utc() -> None:
    parsed = parse_http_date("Mon, 02 Mar 2026 09:00:00 GMT")
    assert parsed == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    assert parse_http_date("yesterday") is None


def test_more_than_20_ids_per_fetch_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 20"):
        client("http://127.0.0.1:9").fetch_contacts([str(i) for i in range(21)])


def test_repr_never_shows_the_token() -> None:
    assert TOKEN not in repr(client("http://127.0.0.1:9"))


def test_concurrent_fetches_send_20_ids_each_with_bounded_requests_in_flight() -> None:
    lock = threading.Lock()
    in_flight = {"now": 0, "max": 0}
    batches: list[list[str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            ids = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                batches.append(ids)
                in_flight["now"] += 1
                in_flight["max"] = max(in_flight["max"], in_flight["now"])
            time.sleep(0.05)
            with lock:
                in_flight["now"] -= 1
            body = json.dumps([{"$id": i} for i in ids]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        ids = [f"ID{i:03d}" for i in range(130)]
        got = list(client(f"http://127.0.0.1:{httpd.server_address[1]}")
                   .fetch_contacts_concurrently(iter(ids), max_workers=3))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert sorted(c["$id"] for c in got) == ids
    assert sorted(len(b) for b in batches) == [10, 20, 20, 20, 20, 20, 20]
    assert in_flight["max"] == 3


@pytest.mark.parametrize("api_url", ["127.0.0.1:9", "api.dialfire.com", "ftp://127.0.0.1:9"])
def test_an_api_url_without_http_fails_at_once_naming_the_setting(api_url: str) -> None:
    """A URL requests cannot use is a setting to fix, not a network hiccup to retry."""
    started = time.monotonic()
    with pytest.raises(DialfireConfigError) as caught:
        client(api_url, max_tries=4, backoff_base=1).fields()
    message = str(caught.value)
    assert "api_url" in message and "TAP_DIALFIRE_API_URL" in message
    assert "try again later" not in message
    assert time.monotonic() - started < 1, "not retried"


def test_a_token_that_cannot_be_a_header_fails_at_once_without_showing_it() -> None:
    """A token pasted with a line break (a secrets file) is refused by requests before it is
    sent; its error text contains the header value, so only the setting may be named."""
    secret = "abc-secret-987"
    bad = DialfireClient(api_url="http://127.0.0.1:9", campaign_id="CAMPAIGN",
                         token=f"{secret}\n", max_tries=4, backoff_base=1)
    started = time.monotonic()
    with pytest.raises(DialfireConfigError) as caught:
        bad.fields()
    message = str(caught.value)
    assert "campaign_token" in message and "TAP_DIALFIRE_CAMPAIGN_TOKEN" in message
    chained: BaseException | None = caught.value
    while chained is not None:  # no traceback of it shows the token either
        assert secret not in str(chained) and secret not in repr(chained)
        suppressed = chained.__suppress_context__
        chained = chained.__cause__ or (None if suppressed else chained.__context__)
    assert time.monotonic() - started < 1, "not retried"


def test_requested_contacts_the_api_leaves_out_are_logged_not_skipped_silently(
    server: tuple[str, Script], caplog: pytest.LogCaptureFixture
) -> None:
    """The API omits unknown (deleted) ids; the run cannot tell them from a contact it should
    have had, so it says which ones it did not get."""
    url, script = server
    script.responses.append(ok([{"$id": "AAAA"}, {"$id": "CCCC"}]))
    with caplog.at_level("WARNING", logger="tap-dialfire.client"):
        got = client(url).fetch_contacts(["AAAA", "BBBB", "CCCC"])
    assert [c["$id"] for c in got] == ["AAAA", "CCCC"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "1 of 3" in warnings[0] and "BBBB" in warnings[0]


def test_credentials_in_the_api_url_never_reach_an_error_message() -> None:
    """A proxy URL with a password (or an ?access_token= query, as some clients use) is shown
    without them."""
    for api_url in ("http://user:pa55word@127.0.0.1:9", "http://127.0.0.1:9/?access_token=pa55word",
                    "127.0.0.1:9/?access_token=pa55word"):
        with pytest.raises(DialfireError) as caught:
            client(api_url, max_tries=1, timeout=2).fields()
        assert "pa55word" not in str(caught.value), str(caught.value)
        assert "127.0.0.1" in str(caught.value)
