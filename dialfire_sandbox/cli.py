"""`dialfire-sandbox`: serve an emulated campaign, print the rows a sync must produce, advance.

    dialfire-sandbox serve --port 8765 --seed 7 --contacts 1000
    dialfire-sandbox expected --url http://127.0.0.1:8765 --stream transactions
    dialfire-sandbox expected --seed 7 --contacts 100 --filter-mode hi_updates_only
    dialfire-sandbox advance --url http://127.0.0.1:8765 --minutes 5 --new-transactions 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from dialfire_sandbox.expected import FILTER_MODES, expected_rows
from dialfire_sandbox.sandbox import DEFAULT_TOKEN, Sandbox
from dialfire_sandbox.world import World

STREAMS = ("contacts", "transactions", "connections", "recordings", "inbound_calls")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialfire-sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API on 127.0.0.1 until interrupted")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--contacts", type=int, default=100)
    serve.add_argument("--campaign", help="campaign id (default: derived from the seed)")
    serve.add_argument("--token", help=f"campaign token (default: {DEFAULT_TOKEN})")
    serve.add_argument("--now", help="initial virtual time, e.g. 2026-03-02T09:00:00.000Z")
    serve.add_argument("--feed-time", choices=("fired", "modified"), default="fired")
    serve.add_argument("--legacy-feed-entries", action="store_true",
                       help="append the old 4th part taskLogIndex,transactionIndex to feed entries")
    serve.add_argument("--call-data-keeps-contact-day", action="store_true",
                       help="attaching call data does not move the contact's changed day")
    serve.add_argument("--verbose", action="store_true", help="log each request (no query)")

    expected = commands.add_parser("expected", help="print expected rows as JSON lines")
    source = expected.add_mutually_exclusive_group()
    source.add_argument("--url", help="a running sandbox, e.g. http://127.0.0.1:8765")
    source.add_argument("--seed", type=int, help="a fresh world from this seed (default 7)")
    expected.add_argument("--contacts", type=int, default=100, help="with --seed")
    expected.add_argument("--stream", choices=STREAMS, help="only this stream")
    expected.add_argument("--filter-mode", choices=FILTER_MODES, default="all")
    expected.add_argument("--task-prefixes", default="", help="comma separated, e.g. fc_,qc_")
    expected.add_argument("--since", help="only contacts changed on/after this day (UTC)")

    advance = commands.add_parser("advance", help="advance a running sandbox's clock")
    advance.add_argument("--url", required=True)
    advance.add_argument("--minutes", type=float, default=5)
    advance.add_argument("--new-transactions", type=int, default=10)
    advance.add_argument("--attach-call-data", type=int, default=3)
    advance.add_argument("--new-contacts", type=int, default=2)
    advance.add_argument("--new-inbound-calls", type=int, default=2)
    advance.add_argument("--new-field", help="name of a new text field")
    return parser


def _control(url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def _serve(args: argparse.Namespace) -> int:
    sandbox = Sandbox(seed=args.seed, contacts=args.contacts, campaign_id=args.campaign,
                      token=args.token, now=args.now, feed_time=args.feed_time, port=args.port,
                      verbose=args.verbose, legacy_feed_entries=args.legacy_feed_entries,
                      call_data_moves_contact=not args.call_data_keeps_contact_day)
    sandbox.start()
    print(json.dumps({"url": sandbox.url, "campaign_id": sandbox.campaign_id,
                      "contacts": args.contacts, "seed": args.seed}), flush=True)
    print(f"dialfire-sandbox serving campaign {sandbox.campaign_id} at {sandbox.url} "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sandbox.stop()
    return 0


def _expected(args: argparse.Namespace) -> int:
    prefixes = tuple(p for p in args.task_prefixes.split(",") if p)
    if args.url:
        query = urllib.parse.urlencode({"filter_mode": args.filter_mode,
                                        "task_prefixes": ",".join(prefixes),
                                        "since": args.since or ""})
        rows = _control(args.url, f"/_sandbox/expected?{query}")
    else:
        from dialfire_sandbox.formats import from_ms, parse_timestamp_ms

        world = World(seed=7 if args.seed is None else args.seed, contacts=args.contacts)
        since = from_ms(parse_timestamp_ms(args.since)) if args.since else None
        rows = expected_rows(world, filter_mode=args.filter_mode, task_prefixes=prefixes,
                             since=since)
    out = sys.stdout
    for stream in STREAMS:
        if args.stream and stream != args.stream:
            continue
        for row in rows[stream]:
            line = row if args.stream else {"stream": stream, "record": row}
            out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


def _advance(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "minutes": args.minutes, "new_transactions": args.new_transactions,
        "attach_call_data": args.attach_call_data, "new_contacts": args.new_contacts,
        "new_inbound_calls": args.new_inbound_calls,
    }
    if args.new_field:
        body["new_field"] = {"name": args.new_field, "fieldType": "text"}
    print(json.dumps(_control(args.url, "/_sandbox/advance", "POST", body), ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"serve": _serve, "expected": _expected, "advance": _advance}[args.command]
    try:
        return handler(args)
    except BrokenPipeError:  # the reader (e.g. `head`) went away: not an error
        sys.stderr.close()
        return 0
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace").strip()
        print(f"dialfire-sandbox: the sandbox answered {error.code}: {detail}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as error:
        print(f"dialfire-sandbox: cannot reach the sandbox ({error}); is it running?",
              file=sys.stderr)
    except ValueError as error:
        print(f"dialfire-sandbox: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
