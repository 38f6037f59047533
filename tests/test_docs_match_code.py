"""The README's settings table is the users' reference: it must say what the code does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from singer_sdk.helpers.capabilities import BATCH_CONFIG, FLATTENING_CONFIG, STREAM_MAPS_CONFIG

from tap_dialfire.tap import TapDialfire
from target_dialfire_sql.target import TargetDialfireSQL

README = Path(__file__).resolve().parents[1] / "README.md"
SDK_BUILT_IN_SETTINGS = {
    name
    for schema in (STREAM_MAPS_CONFIG, FLATTENING_CONFIG, BATCH_CONFIG)
    for name in schema["properties"]
}


def _section(text: str, heading: str) -> str:
    """From `heading` to the next heading of the same or a higher level."""
    start = text.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    following = re.search(rf"^#{{1,{level}}} ", text[start + len(heading):], flags=re.MULTILINE)
    return text[start: start + len(heading) + following.start()] if following else text[start:]


def _table_rows(section: str) -> dict[str, str]:
    """`setting` → its default cell, for a `| setting | default | meaning |` table."""
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|\s*([^|]*)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def _documented_default(cell: str) -> object:
    if cell.startswith("(required"):
        return "required"
    if cell == "none":
        return None
    literal = cell.strip("`")
    try:
        return json.loads(literal)
    except json.JSONDecodeError:
        return literal


def test_readme_lists_every_tap_setting_with_its_real_default() -> None:
    rows = _table_rows(_section(README.read_text(encoding="utf-8"), "### tap-dialfire"))
    schema = TapDialfire.config_jsonschema
    # singer-sdk adds its built-in settings to the class schema once a tap is created; the
    # README names those in the sentence under the table.
    assert set(rows) <= set(schema["properties"])
    assert set(schema["properties"]) - set(rows) <= SDK_BUILT_IN_SETTINGS
    for name, cell in rows.items():
        real = "required" if name in schema.get("required", []) else (
            schema["properties"][name].get("default"))
        assert _documented_default(cell) == real, f"README default of {name}: {cell!r} != {real!r}"


def test_readme_names_every_setting_of_target_dialfire_sql_it_declares() -> None:
    loaders = _section(README.read_text(encoding="utf-8"), "### Loaders")
    about = subprocess.run(
        [sys.executable, "-m", "target_dialfire_sql.target", "--about", "--format", "json"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    declared = set(json.loads(about.stdout)["settings"]["properties"])
    own = {"url", "table_prefix", "load_method", "default_target_schema", "batch_size_rows"}
    assert own <= declared
    assert set(TargetDialfireSQL.config_jsonschema["properties"]) <= own
    for name in own:
        assert f"`{name}`" in loaders, f"README does not name target-dialfire-sql's {name}"


def test_about_describes_every_tap_setting() -> None:
    for name, spec in TapDialfire.config_jsonschema["properties"].items():
        assert spec.get("description"), f"--about has no description for {name}"


def test_readme_maps_every_mode_and_flag_of_dbsync2() -> None:
    migration = _section(README.read_text(encoding="utf-8"), "## Migrating from dbsync2")
    first_cells = {line.split("|")[1].strip() for line in migration.splitlines()
                   if line.startswith("| `")}
    for mode in ("db_init", "db_update", "db_sync", "webhook"):
        assert any(f"--a {mode}" in cell for cell in first_cells), f"mode {mode} not mapped"
    for flag in ("--c", "--ct", "--s", "--fm", "--fp", "--url", "--tp", "--wr", "--wb", "--w",
                 "--d", "--l", "--v"):
        assert any(cell.startswith(f"`{flag}") and cell[len(flag) + 1] in " `"
                   for cell in first_cells), f"flag {flag} not mapped"
