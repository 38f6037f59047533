"""The Dialfire API as the tap uses it: five endpoints, one retry policy, one error style.

Every request has a timeout; 5xx, 429, network errors and unreadable bodies are retried with
exponential back-off and jitter (``Retry-After`` wins when the server sends it); 401/403 and
other 4xx stop at once. Errors are :class:`DialfireError` with one line that names the endpoint
and what to do. The token travels only in the ``Authorization`` header, never in a URL, a log
line or an error message.

All streams share this client (the contacts stream calls it from a thread pool), so the retry
and error rules are written once rather than once per singer-sdk stream class.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import Any

import requests
from requests.adapters import HTTPAdapter

logger = logging.getLogger("tap-dialfire.client")

FETCH_BATCH_SIZE = 20
"""The API's maximum number of contact ids per ``POST /contacts/``."""


class DialfireError(Exception):
    """A failure the user can act on; ``str()`` is one line without secrets."""


class DialfireAuthError(DialfireError):
    """The API refused the campaign (401/403): wrong token or campaign id."""


class DialfireConfigError(DialfireError):
    """A setting requests cannot use as given (``api_url``, ``campaign_token``): retrying it
    cannot help, so it fails at once and names the setting."""


class DialfireResponseError(DialfireError):
    """The API answered something the tap cannot use (status or body)."""


class DialfireUnavailableError(DialfireError):
    """Retries were exhausted on 5xx/429/network errors/timeouts."""


@dataclass
class Page:
    """One page of a cursor-paged endpoint."""

    results: list[Any]
    cursor: str | None
    server_time: dt.datetime | None


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def parse_http_date(value: str | None) -> dt.datetime | None:
    """The ``Date`` header as an aware UTC datetime (None when absent or unreadable)."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def display_url(url: str) -> str:
    """``url`` for messages: without a user/password or query (where a token could hide)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = parse_http_date(value)
        if when is None:
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class DialfireClient:
    """A campaign's endpoints. Thread-safe: one ``requests.Session`` per thread."""

    def __init__(
        self,
        *,
        api_url: str,
        campaign_id: str,
        token: str,
        timeout: float = 30.0,
        max_tries: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        pool_size: int = 16,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.campaign_id = campaign_id
        self._token = token
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.pool_size = pool_size
        self._local = threading.local()

    def __repr__(self) -> str:  # never show the token
        return (
            f"DialfireClient(api_url={display_url(self.api_url)!r}, "
            f"campaign_id={self.campaign_id!r})"
        )

    # ------------------------------------------------------------------ endpoints

    def fields(self) -> list[dict[str, Any]]:
        """``GET /fields/list``: the campaign's form elements."""
        body, _ = self._request("fields", "GET", "/fields/list")
        if not isinstance(body, list):
            raise self._malformed("fields", "expected a JSON array")
        return [item for item in body if isinstance(item, dict)]

    def list_contacts(
        self, *, changed_since: dt.date | None = None, page_size: int = 1000
    ) -> Iterator[Page]:
        """``GET /contacts/list``: pages of ``{"id", "md5"}``."""
        params: dict[str, str] = {"limit": str(page_size)}
        if changed_since is not None:
            params["changedSince"] = changed_since.isoformat()
        return self._pages("contacts_list", "/contacts/list", params)

    def fetch_contacts(
        self, ids: Sequence[str], *, cancel: threading.Event | None = None
    ) -> list[dict[str, Any]]:
        """``POST /contacts/?include_md5=true`` with up to 20 ids; unknown ids are omitted.

        ``cancel`` stops retrying once set (the run has failed elsewhere).
        """
        if len(ids) > FETCH_BATCH_SIZE:
            msg = f"at most {FETCH_BATCH_SIZE} contact ids per request, got {len(ids)}"
            raise ValueError(msg)
        body, _ = self._request(
            "contacts_fetch",
            "POST",
            "/contacts/",
            params={"include_md5": "true"},
            data=json.dumps(list(ids)),
            cancel=cancel,
        )
        if not isinstance(body, list):
            raise self._malformed("contacts_fetch", "expected a JSON array of contacts")
        contacts = [item for item in body if isinstance(item, dict)]
        missing = set(ids) - {contact.get("$id") for contact in contacts}
        if missing:
            # Unknown (deleted) ids are omitted by design; say which, so none vanishes unseen.
            logger.warning(
                "Dialfire contacts_fetch: %d of %d requested contacts were not returned "
                "(deleted?): %s",
                len(missing),
                len(ids),
                ", ".join(sorted(missing)[:20]),
            )
        return contacts

    def fetch_contacts_concurrently(
        self, ids: Iterable[str], *, max_workers: int
    ) -> Iterator[dict[str, Any]]:
        """Contacts for ``ids``, 20 per request, at most ``max_workers`` requests in flight.

        ``ids`` is consumed lazily (a listing can page while contacts are fetched); contacts
        are yielded as their batches complete, in no particular order. The first batch that
        fails for good raises, and the requests still pending are abandoned.
        """
        pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dialfire-fetch")
        pending: set[Future[list[dict[str, Any]]]] = set()
        cancel = threading.Event()
        iterator = iter(ids)
        try:
            while batch := list(islice(iterator, FETCH_BATCH_SIZE)):
                pending.add(pool.submit(self.fetch_contacts, batch, cancel=cancel))
                while len(pending) >= max_workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield from future.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
        finally:
            cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def change_feed(
        self,
        *,
        from_: str,
        to: str | None = None,
        filters: Mapping[str, str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Page]:
        """``GET /contacts/transactions/``: pages of ``"fired|md5|contact id"`` strings."""
        params = {"from": from_, "limit": str(page_size), **(filters or {})}
        if to:
            params["to"] = to
        return self._pages("change_feed", "/contacts/transactions/", params)

    def inbound_calls(self, *, from_: str, page_size: int = 1000) -> Iterator[Page]:
        """``GET /inbound/calls/``: pages of calls (an empty ``from`` means all)."""
        params = {"from": from_, "limit": str(page_size)}
        return self._pages("inbound_calls", "/inbound/calls/", params)

    # ------------------------------------------------------------------ plumbing

    def _pages(self, endpoint: str, path: str, params: dict[str, str]) -> Iterator[Page]:
        cursor: str | None = None
        seen_cursors: set[str] = set()
        while True:
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            body, server_time = self._request(endpoint, "GET", path, params=page_params)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise self._malformed(endpoint, 'expected an object with a "results" array')
            next_cursor = body.get("cursor")
            if next_cursor is not None and not isinstance(next_cursor, str):
                raise self._malformed(endpoint, '"cursor" is not a string')
            yield Page(results=body["results"], cursor=next_cursor or None, server_time=server_time)
            if not next_cursor:
                return
            if next_cursor in seen_cursors:
                raise self._malformed(endpoint, "the server repeated a cursor (paging loop)")
            seen_cursors.add(next_cursor)
            cursor = next_cursor

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["Authorization"] = f"Bearer {self._token}"
            session.headers["Accept"] = "application/json"
            session.headers["User-Agent"] = "tap-dialfire"
            self._local.session = session
        return session

    def _url(self, path: str) -> str:
        return f"{self.api_url}/api/campaigns/{self.campaign_id}{path}"

    def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: str | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[Any, dt.datetime | None]:
        """One logical request: retried until it succeeds or ``max_tries`` is used up."""
        last_reason = ""
        cancel = cancel or threading.Event()
        for attempt in range(1, self.max_tries + 1):
            if cancel.is_set():
                raise DialfireError(f"Dialfire {endpoint}: request abandoned")
            try:
                return self._attempt(endpoint, method, path, params=params, data=data)
            except _Retry as retry:
                last_reason = retry.reason
                if attempt == self.max_tries:
                    break
                wait = retry.wait if retry.wait is not None else self._backoff(attempt)
                logger.warning(
                    "Dialfire %s: %s; retry %d of %d in %.1f s",
                    endpoint,
                    retry.reason,
                    attempt,
                    self.max_tries - 1,
                    wait,
                )
                cancel.wait(wait)
        advice = (
            "raise timeout (TAP_DIALFIRE_TIMEOUT) or try again later"
            if last_reason.startswith("no answer")
            else "try again later; the next run resumes from the last stored bookmark"
        )
        raise DialfireUnavailableError(
            f"Dialfire {endpoint} failed after {self.max_tries} attempts ({last_reason}) "
            f"for campaign {self.campaign_id} at {display_url(self.api_url)}: {advice}."
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with jitter: base·2^(attempt-1), ±50 %, capped."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)

    def _attempt(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        data: str | None,
    ) -> tuple[Any, dt.datetime | None]:
        try:
            response = self._session().request(
                method, self._url(path), params=params, data=data, timeout=self.timeout
            )
            content = response.content
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout:g} s") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema):
            raise DialfireConfigError(
                f"Dialfire {endpoint}: api_url {display_url(self.api_url)!r} is not an "
                f"http(s) URL for campaign {self.campaign_id}: check api_url "
                "(TAP_DIALFIRE_API_URL), e.g. "
                "https://api.dialfire.com."
            ) from None
        except requests.exceptions.InvalidHeader:
            # requests' own message quotes the header value, i.e. the token: never show it.
            raise DialfireConfigError(
                f"Dialfire {endpoint}: the campaign_token of campaign {self.campaign_id} cannot "
                "be sent as a header (a line break or space in it?): check campaign_token "
                "(TAP_DIALFIRE_CAMPAIGN_TOKEN)."
            ) from None
        except requests.RequestException as exc:
            raise _Retry(f"network error: {type(exc).__name__}") from None

        status = response.status_code
        if status in (401, 403):
            raise DialfireAuthError(
                f"Dialfire refused campaign {self.campaign_id} (HTTP {status} "
                f"{response.reason or 'Forbidden'}) on {endpoint}: check campaign_token "
                "(TAP_DIALFIRE_CAMPAIGN_TOKEN) and campaign_id (TAP_DIALFIRE_CAMPAIGN_ID)."
            )
        if status == 429 or status >= 500:
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None:
                wait = min(wait, self.retry_after_max)
            raise _Retry(f"HTTP {status}", wait)
        if status == 404:
            raise DialfireResponseError(
                f"Dialfire {endpoint} answered HTTP 404 for campaign {self.campaign_id}: "
                "check campaign_id (TAP_DIALFIRE_CAMPAIGN_ID) and api_url."
            )
        if not 200 <= status < 300:
            raise DialfireResponseError(
                f"Dialfire {endpoint} answered HTTP {status} for campaign "
                f"{self.campaign_id}; the tap cannot continue."
            )
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            # A truncated body is usually a dropped connection: retry before giving up.
            raise _Retry("the response body is not JSON") from None
        return body, parse_http_date(response.headers.get("Date"))

    def _malformed(self, endpoint: str, detail: str) -> DialfireResponseError:
        return DialfireResponseError(
            f"Dialfire {endpoint} sent a malformed response ({detail}) for campaign "
            f"{self.campaign_id}; the tap cannot continue."
        )
