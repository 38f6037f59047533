"""Benchmark: a first run of tap-dialfire against the sandbox, as ratios to a bare HTTP reader.

The baseline, measured in the same session against the same sandbox process, is the least work
any client must do for a first run: list every contact id and POST them back 20 at a time,
sequentially, decoding the JSON. The tap does that plus row building, schema handling and
Singer output, with `max_workers` fetches in flight. The printed ratios (tap / baseline) are
what to compare across changes; absolute seconds depend on the machine.

    .venv/bin/python bench/first_run.py --contacts 5000 --repeat 3

Not a test: CI never runs it. Record notable results in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent
TOKEN = "bench-token"


def start_sandbox(contacts: int, seed: int) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [str(VENV_BIN / "dialfire-sandbox"), "serve", "--port", "0", "--seed", str(seed),
         "--contacts", str(contacts), "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            info = json.loads(line)
            return process, info["url"], info["campaign_id"]
    raise SystemExit("the sandbox did not start")


def bare_reader(url: str, campaign: str) -> int:
    """List every id, fetch 20 per POST, decode: the floor for any first run."""
    base = f"{url}/api/campaigns/{campaign}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    ids: list[str] = []
    cursor = ""
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = session.get(f"{base}/contacts/list", params=params, timeout=60).json()
        ids.extend(item["id"] for item in page["results"])
        cursor = page.get("cursor") or ""
        if not cursor:
            break
    fetched = 0
    for start in range(0, len(ids), 20):
        batch = ids[start:start + 20]
        response = session.post(f"{base}/contacts/", params={"include_md5": "true"},
                                data=json.dumps(batch), timeout=60)
        fetched += len(response.json())
    return fetched


def tap_first_run(url: str, campaign: str, workers: int) -> int:
    """The real CLI, records to a file; returns the number of contact records."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"api_url": url, "campaign_id": campaign,
                                      "campaign_token": TOKEN, "max_workers": workers}))
        out = Path(tmp) / "out.jsonl"
        with out.open("w") as sink:
            subprocess.run([str(VENV_BIN / "tap-dialfire"), "--config", str(config)],
                           stdout=sink, stderr=subprocess.DEVNULL, check=True)
        with out.open() as lines:
            messages = (json.loads(line) for line in lines)
            return sum(m["type"] == "RECORD" and m["stream"] == "contacts" for m in messages)


def timed(function: Callable[..., int], *args: object) -> tuple[float, int]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    process, url, campaign = start_sandbox(args.contacts, args.seed)
    try:
        runs: dict[str, list[float]] = {"baseline": [], "tap w=1": [], "tap w=4": []}
        for _ in range(args.repeat):
            seconds, count = timed(bare_reader, url, campaign)
            assert count == args.contacts, count
            runs["baseline"].append(seconds)
            for workers in (1, 4):
                seconds, count = timed(tap_first_run, url, campaign, workers)
                assert count == args.contacts, f"tap emitted {count} contacts"
                runs[f"tap w={workers}"].append(seconds)
    finally:
        process.terminate()
        process.wait()
    base = statistics.median(runs["baseline"])
    print(f"first run, {args.contacts} contacts, median of {args.repeat}, "
          f"{os.cpu_count()} cores")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"  {name:10s} {median:7.2f} s  {args.contacts / median:8.0f} contacts/s  "
              f"ratio to baseline {median / base:5.2f}")


if __name__ == "__main__":
    main()
