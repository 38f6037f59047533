"""`Sandbox`: a world plus its HTTP server on 127.0.0.1, for tests and scripts.

    with Sandbox(seed=7, contacts=100) as sb:
        tap_config = {"api_url": sb.url, "campaign_id": sb.campaign_id,
                      "campaign_token": sb.token}
        sb.advance(minutes=5)
        rows = sb.expected()
"""

from __future__ import annotations

import threading
from datetime import datetime
from types import TracebackType
from typing import Any

from dialfire_sandbox.faults import FaultPlan, RequestStats
from dialfire_sandbox.server import SandboxHTTPServer
from dialfire_sandbox.world import World

DEFAULT_TOKEN = "sandbox-token"


class Sandbox:
    """An emulated Dialfire campaign served over loopback HTTP (a daemon thread)."""

    def __init__(
        self,
        seed: int = 7,
        contacts: int = 100,
        campaign_id: str | None = None,
        token: str | None = None,
        now: datetime | str | None = None,
        feed_time: str = "fired",
        port: int = 0,
        verbose: bool = False,
        call_data_moves_contact: bool = True,
        legacy_feed_entries: bool = False,
    ) -> None:
        self.world = World(seed=seed, contacts=contacts, campaign_id=campaign_id, now=now,
                           feed_time=feed_time, call_data_moves_contact=call_data_moves_contact,
                           legacy_feed_entries=legacy_feed_entries)
        self.campaign_id = self.world.campaign_id
        self.token = token or DEFAULT_TOKEN
        self.faults = FaultPlan()
        self.request_stats = RequestStats()
        self._port = port
        self._verbose = verbose
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        if self._server is None:
            self._server = SandboxHTTPServer(
                ("127.0.0.1", self._port), self.world, self.token, self.faults,
                self.request_stats, verbose=self._verbose,
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"dialfire-sandbox-{self.port}", daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() or use `with`")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, to be used as the tap's `api_url` (paths start with `/api/...`)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ control
    def now(self) -> datetime:
        return self.world.now()

    def advance(
        self,
        minutes: float = 5,
        new_transactions: int = 10,
        attach_call_data: int = 3,
        new_contacts: int = 2,
        new_inbound_calls: int = 2,
        new_field: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self.world.advance(
            minutes=minutes, new_transactions=new_transactions,
            attach_call_data=attach_call_data, new_contacts=new_contacts,
            new_inbound_calls=new_inbound_calls, new_field=new_field,
        )

    def add_fault(
        self,
        endpoint: str = "*",
        kind: str = "error",
        count: int = 1,
        status: int = 503,
        retry_after: float = 1,
        latency_ms: int = 200,
    ) -> None:
        self.faults.add(endpoint=endpoint, kind=kind, count=count, status=status,
                        retry_after=retry_after, latency_ms=latency_ms)

    def clear_faults(self) -> None:
        self.faults.clear()

    def stats(self) -> dict[str, Any]:
        return self.request_stats.snapshot()

    def reset_stats(self) -> None:
        self.request_stats.reset()

    def expected(
        self,
        filter_mode: str = "all",
        task_prefixes: tuple[str, ...] | list[str] = (),
        since: datetime | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        from dialfire_sandbox.expected import expected_rows

        with self.world.lock:
            return expected_rows(self.world, filter_mode=filter_mode,
                                 task_prefixes=tuple(task_prefixes), since=since)
