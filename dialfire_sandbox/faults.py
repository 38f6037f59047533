"""Injected faults and request statistics: what a test asks the server to get wrong, and counts.

Faults are queued per endpoint name (or `*` for all) and consumed one per request, in the order
they were added, so a test can script "two 503s, then a dropped connection, then success".
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

ENDPOINTS = ("fields", "contacts_list", "contacts_fetch", "change_feed", "inbound_calls")
KINDS = ("error", "rate_limit", "drop", "non_json", "latency", "malformed")


@dataclass
class Fault:
    endpoint: str
    kind: str
    count: int
    status: int = 503
    retry_after: float = 1
    latency_ms: int = 200

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint, "kind": self.kind, "count": self.count,
            "status": self.status, "retry_after": self.retry_after, "latency_ms": self.latency_ms,
        }


class FaultPlan:
    """A thread-safe queue of faults; `take(endpoint)` hands out the next one that applies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        endpoint: str = "*",
        kind: str = "error",
        count: int = 1,
        status: int = 503,
        retry_after: float = 1,
        latency_ms: int = 200,
    ) -> Fault:
        if endpoint != "*" and endpoint not in ENDPOINTS:
            names = ", ".join(ENDPOINTS)
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {names} or *")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
        if kind == "malformed" and endpoint != "change_feed":
            raise ValueError("a malformed fault adds bad entries to the change feed only")
        if count < 1:
            raise ValueError("count must be at least 1")
        if kind == "error" and not 500 <= status <= 599:
            raise ValueError("an error fault needs a 5xx status")
        fault = Fault(endpoint, kind, int(count), int(status), retry_after, int(latency_ms))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in ("*", endpoint):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


class RequestStats:
    """Requests and response statuses per endpoint name (control requests are not counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def response(self, endpoint: str, status: int | str) -> None:
        with self._lock:
            self._responses[endpoint][str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {name: self._requests.get(name, 0) for name in ENDPOINTS}
                | {k: v for k, v in self._requests.items() if k not in ENDPOINTS},
                "responses": {name: dict(counts) for name, counts in self._responses.items()},
            }

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._responses.clear()
