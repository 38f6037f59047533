"""The webhook target is declared but not built: it must refuse loudly, never drop silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCHEMA = {"type": "SCHEMA", "stream": "transactions", "key_properties": ["id"],
          "schema": {"properties": {"id": {"type": "string"}}}}
RECORD = {"type": "RECORD", "stream": "transactions", "record": {"id": "a"}}
STATE = {"type": "STATE", "value": {"bookmarks": {"contacts": {"feed_position": "x"}}}}


def test_webhook_target_refuses_records_and_emits_no_state(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"url": "http://127.0.0.1:9/hook"}))
    messages = "\n".join(json.dumps(m) for m in (SCHEMA, RECORD, STATE)) + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "target_dialfire_webhook.target", "--config", str(config)],
        input=messages, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "not built yet" in result.stderr
    assert "STATE" not in result.stdout and "feed_position" not in result.stdout
