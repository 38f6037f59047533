"""The sandbox over HTTP: Dialfire's five sync endpoints under `/api`, the control API under
`/_sandbox`.

Standard library only (`http.server`), so the emulator adds no dependency. Every response
carries a `Date` header from the world's virtual clock, because the tap takes the server's time
from it. Request lines are never logged with their query string (it may hold `access_token`).
"""

from __future__ import annotations

import hmac
import json
import re
import sys
import time
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dialfire_sandbox.faults import FaultPlan, RequestStats
from dialfire_sandbox.formats import (
    DAY_MS,
    decode_cursor,
    encode_cursor,
    iso_ms,
    md5_hex,
    parse_timestamp_ms,
)
from dialfire_sandbox.world import World

MAX_LIMIT = 1000
MAX_FETCH_IDS = 20
_API_PATH = re.compile(r"^/api/campaigns/([^/]+)/(.+?)/*$")
_ROUTES = {
    ("GET", "fields/list"): "fields",
    ("GET", "contacts/list"): "contacts_list",
    ("POST", "contacts"): "contacts_fetch",
    ("GET", "contacts/transactions"): "change_feed",
    ("GET", "inbound/calls"): "inbound_calls",
}


class BadRequest(Exception):
    """A client error answered with 400 and this message as plain text."""


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        world: World,
        token: str,
        faults: FaultPlan,
        stats: RequestStats,
        verbose: bool = False,
    ) -> None:
        self.world = world
        self.token = token
        self.faults = faults
        self.stats = stats
        self.verbose = verbose
        super().__init__(address, SandboxHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response (timeouts, a dropped-connection fault) is normal
        for a test server; anything else is printed as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    _malformed = False
    _stat_endpoint: str | None = None  # the API endpoint whose response is not counted yet
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes; no 40 ms delayed-ACK stall
    server_version = "DialfireSandbox/1.0"

    # ------------------------------------------------------------------ plumbing
    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: the sandbox's virtual clock, not the host's."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        return format_datetime(self.server.world.now(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.verbose:
            path = urlsplit(self.path).path  # never the query: it may carry access_token
            self.log_message('"%s %s" %s', self.command, path, code)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None, stat: str | None = None) -> None:
        # Count the response before its bytes leave: a client that reads the statistics right
        # after its response must see it counted.
        self._count_response(stat or str(status))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _count_response(self, outcome: str) -> None:
        endpoint = self._stat_endpoint
        if endpoint is not None:
            self.server.stats.response(endpoint, outcome)
            self._stat_endpoint = None

    def _text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8", headers)

    def _json(self, status: int, value: Any) -> None:
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    # ------------------------------------------------------------------ routing
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path.startswith("/_sandbox/"):
            self._control(url.path.rstrip("/"), query)
            return
        match = _API_PATH.match(url.path)
        endpoint = _ROUTES.get((self.command, match.group(2))) if match else None
        if match is None or endpoint is None:
            body = self._read_body()
            del body
            known = match is not None and any(p == match.group(2) for _, p in _ROUTES)
            if known:
                self._text(405, "405 - Method Not Allowed")
            else:
                self._text(404, "404 - Not Found")
            return
        self.server.stats.request(endpoint)
        self._stat_endpoint = endpoint
        self._malformed = False
        if self._faulted(endpoint):
            return
        if not self._authorised(match.group(1), query):
            self._read_body()
            self._text(403, "403 - Forbidden")
            return
        try:
            with self.server.world.lock:
                status, value = getattr(self, f"_api_{endpoint}")(query)
        except BadRequest as error:
            self._text(400, f"400 - Bad Request: {error}")
            return
        except Exception as error:  # a sandbox bug must not look like a hung server
            sys.stderr.write(f"dialfire-sandbox: {endpoint} failed: {error!r}\n")
            self._text(500, "500 - Internal Server Error")
            return
        self._json(status, value)

    def _authorised(self, campaign_id: str, query: dict[str, str]) -> bool:
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        token = token or query.get("access_token", "")
        expected = self.server.token
        ok_token = bool(token) and hmac.compare_digest(token.encode(), expected.encode())
        return ok_token and campaign_id == self.server.world.campaign_id

    def _faulted(self, endpoint: str) -> bool:
        """Apply the next queued fault for `endpoint`; True when it answered the request."""
        fault = self.server.faults.take(endpoint)
        if fault is None:
            return False
        if fault.kind == "latency":
            time.sleep(fault.latency_ms / 1000)
            return False
        if fault.kind == "malformed":
            self._malformed = True
            return False
        self._read_body()
        if fault.kind == "error":
            self._text(fault.status, f"{fault.status} - Server Error")
            return True
        if fault.kind == "rate_limit":
            retry = fault.retry_after
            value = str(int(retry)) if float(retry).is_integer() else str(retry)
            self._text(429, "429 - Too Many Requests", {"Retry-After": value})
            return True
        if fault.kind == "non_json":
            body = b"<html><head><title>Maintenance</title></head><body>Back soon</body></html>"
            self._send(200, body, "text/html; charset=utf-8", stat="200_non_json")
            return True
        # drop: close the connection without a response
        self._count_response("dropped")
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass
        return True

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _limit(query: dict[str, str]) -> int:
        raw = query.get("limit", "")
        if raw == "":
            return MAX_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            raise BadRequest(f"limit must be an integer, got {raw!r}") from None
        if limit < 1:
            raise BadRequest("limit must be at least 1")
        return min(limit, MAX_LIMIT)

    @staticmethod
    def _time(query: dict[str, str], name: str) -> int | None:
        raw = query.get(name, "")
        if raw == "":
            return None
        try:
            return parse_timestamp_ms(raw)
        except ValueError:
            raise BadRequest(f"{name} is not a timestamp: {raw!r}") from None

    @staticmethod
    def _cursor(query: dict[str, str]) -> list[Any] | None:
        raw = query.get("cursor", "")
        if raw == "":
            return None
        try:
            return decode_cursor(raw)
        except ValueError:
            raise BadRequest("invalid cursor") from None

    @staticmethod
    def _page(results: list[Any], cursor: str | None) -> dict[str, Any]:
        page: dict[str, Any] = {"count": len(results), "results": results}
        if cursor:
            page["cursor"] = cursor
        return page

    # ------------------------------------------------------------------ the five endpoints
    def _api_fields(self, query: dict[str, str]) -> tuple[int, Any]:
        return 200, self.server.world.fields

    def _api_contacts_list(self, query: dict[str, str]) -> tuple[int, Any]:
        world = self.server.world
        limit = self._limit(query)
        since = self._time(query, "changedSince")
        since_day = since // DAY_MS if since is not None else None
        position = self._cursor(query)
        after = None
        if position is not None:
            if len(position) != 3 or position[0] != "list":
                raise BadRequest("invalid cursor")
            after = (int(position[1]), str(position[2]))
        items, last = world.list_contacts(since_day, after, limit)
        cursor = encode_cursor(["list", last[0], last[1]]) if last else None
        return 200, self._page([{"id": cid, "md5": md5} for cid, md5 in items], cursor)

    def _api_contacts_fetch(self, query: dict[str, str]) -> tuple[int, Any]:
        world = self.server.world
        try:
            ids = json.loads(self._read_body() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("body must be a JSON array of contact ids") from None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("body must be a JSON array of contact ids")
        if len(ids) > MAX_FETCH_IDS:
            raise BadRequest(f"at most {MAX_FETCH_IDS} ids per request, got {len(ids)}")
        include_md5 = query.get("include_md5", "").lower() == "true"
        contacts = []
        for cid in dict.fromkeys(ids):
            idx = world.contact_index(cid)
            if idx is None:
                continue
            payload = world.contact(idx)
            if include_md5:
                payload = {"$id": payload["$id"], "$md5": world.contact_md5(idx), **payload}
            contacts.append(payload)
        contacts.sort(key=lambda c: md5_hex(f"{world.seed}|order|{c['$id']}"))
        return 200, contacts

    def _api_change_feed(self, query: dict[str, str]) -> tuple[int, Any]:
        world = self.server.world
        limit = self._limit(query)
        kind = query.get("type", "")
        if kind not in ("", "update"):
            raise BadRequest(f"unsupported type {kind!r}; only 'update' is known")
        position = self._cursor(query)
        after = None
        if position is not None:
            if len(position) != 4 or position[0] != "feed":
                raise BadRequest("invalid cursor")
            after = (int(position[1]), int(position[2]), int(position[3]))
        prefixes = tuple(p for p in query.get("tasks", "").split(",") if p)
        entries, more = world.feed(
            self._time(query, "from"),
            self._time(query, "to"),
            updates_only=kind == "update",
            human_only=query.get("hi", "").lower() == "true",
            task_prefixes=prefixes,
            after=after,
            limit=limit,
        )
        cursor = None
        if more and entries:
            last = entries[-1]
            cursor = encode_cursor(["feed", last.time_ms, last.idx, last.ordinal])
        results = [e.text() for e in entries]
        if self._malformed:
            # Entries an old or broken server might send: a client skips them with a warning.
            results[len(results) // 2:len(results) // 2] = [
                "garbage-without-separators", f"{iso_ms(world.now_ms())}|", "||",
            ]
        return 200, self._page(results, cursor)

    def _api_inbound_calls(self, query: dict[str, str]) -> tuple[int, Any]:
        world = self.server.world
        limit = self._limit(query)
        first, end = world.inbound_range(self._time(query, "from"), self._time(query, "to"))
        position = self._cursor(query)
        if position is not None:
            if len(position) != 2 or position[0] != "inbound":
                raise BadRequest("invalid cursor")
            first = max(first, int(position[1]))
        stop = min(end, first + limit)
        calls = [world.inbound_call(j) for j in range(first, stop)]
        return 200, self._page(calls, encode_cursor(["inbound", stop]) if stop < end else None)

    # ------------------------------------------------------------------ control API
    def _control(self, path: str, query: dict[str, str]) -> None:
        server = self.server
        world = server.world
        body = self._read_body()
        try:
            params = json.loads(body) if body.strip() else {}
            if not isinstance(params, dict):
                raise ValueError("body must be a JSON object")
            route = (self.command, path)
            if route == ("POST", "/_sandbox/advance"):
                self._json(200, world.advance(**params))
            elif route == ("POST", "/_sandbox/faults"):
                self._json(200, {"added": server.faults.add(**params).describe()})
            elif route == ("DELETE", "/_sandbox/faults"):
                server.faults.clear()
                self._json(200, {"faults": []})
            elif route == ("GET", "/_sandbox/faults"):
                self._json(200, {"faults": server.faults.pending()})
            elif route == ("GET", "/_sandbox/stats"):
                self._json(200, server.stats.snapshot())
            elif route == ("POST", "/_sandbox/stats/reset"):
                server.stats.reset()
                self._json(200, server.stats.snapshot())
            elif route == ("GET", "/_sandbox/clock"):
                self._json(200, {"now": iso_ms(world.now_ms())})
            elif route == ("GET", "/_sandbox/info"):
                self._json(200, {
                    "campaign_id": world.campaign_id, "seed": world.seed,
                    "contacts": world.total_contacts, "feed_time": world.feed_time,
                    "now": iso_ms(world.now_ms()),
                })
            elif route == ("GET", "/_sandbox/expected"):
                self._json(200, self._expected(query))
            else:
                self._text(404, "404 - Not Found")
        except (TypeError, ValueError) as error:
            self._text(400, f"400 - Bad Request: {error}")

    def _expected(self, query: dict[str, str]) -> dict[str, Any]:
        from dialfire_sandbox.expected import expected_rows

        since = query.get("since", "")
        since_dt = None
        if since:
            from dialfire_sandbox.formats import from_ms

            since_dt = from_ms(parse_timestamp_ms(since))
        prefixes = tuple(p for p in query.get("task_prefixes", "").split(",") if p)
        with self.server.world.lock:
            return expected_rows(
                self.server.world,
                filter_mode=query.get("filter_mode", "") or "all",
                task_prefixes=prefixes,
                since=since_dt,
            )
