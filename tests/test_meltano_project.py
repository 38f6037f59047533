"""meltano.yml declares every plugin completely, keeps secrets out, and resolves as documented.

The plugins' own `--about` output is the reference: a setting a plugin gains must be declared in
meltano.yml too (Meltano Hub is never consulted), and every secret must be `sensitive: true`.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import processes
from tests.support.processes import REPO_ROOT, VENV_BIN, MeltanoProject, run_timed

pytestmark = [pytest.mark.e2e]


MELTANO_YML: dict[str, Any] = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
PLUGINS = {
    plugin["name"]: plugin
    for kind in ("extractors", "loaders")
    for plugin in MELTANO_YML["plugins"][kind]
}
STREAMS = ("contacts", "transactions", "connections", "recordings", "inbound_calls")
#: Settings target-postgres does not mark secret in its --about, but which are.
POSTGRES_SECRETS = {"password", "sqlalchemy_url", "ssl_client_private_key",
                    "ssh_tunnel.private_key", "ssh_tunnel.private_key_password"}


def about(executable: Path) -> dict[str, Any]:
    result = run_timed([str(executable), "--about", "--format", "json"],
                       env=processes.clean_environment(), what=f"{executable.name} --about")
    return json.loads(result.stdout)


def flat_settings(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Setting name -> JSON schema, nested objects with properties as dotted names."""
    flat: dict[str, dict[str, Any]] = {}
    for name, schema in properties.items():
        nested = schema.get("properties")
        if nested and name not in ("stream_maps", "faker_config", "stream_map_config"):
            flat.update(flat_settings(nested, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = schema
    return flat


def executables(project: MeltanoProject) -> dict[str, Path]:
    return {
        "tap-dialfire": VENV_BIN / "tap-dialfire",
        "target-dialfire-sql": VENV_BIN / "target-dialfire-sql",
        "target-dialfire-webhook": VENV_BIN / "target-dialfire-webhook",
        "target-postgres": project.plugin_executable("loaders", "target-postgres"),
    }


def test_every_plugin_is_declared_completely_without_meltano_hub(
    meltano_project: MeltanoProject,
) -> None:
    for name, executable in executables(meltano_project).items():
        plugin = PLUGINS[name]
        assert plugin.get("namespace") and plugin.get("pip_url"), name
        assert plugin.get("executable") == name
        assert "variant" not in plugin, f"{name}: a variant would make Meltano look it up on Hub"
        described = about(executable)
        assert set(described["capabilities"]) == set(plugin["capabilities"]), name
        declared = {s["name"]: s for s in plugin["settings"]}
        settings = flat_settings(described["settings"]["properties"])
        assert set(settings) <= set(declared), f"{name}: undeclared {set(settings) - set(declared)}"
        secrets = {k for k, schema in settings.items() if schema.get("secret")}
        if name == "target-postgres":
            secrets |= POSTGRES_SECRETS
        assert secrets, name
        for secret in secrets:
            assert declared[secret].get("sensitive") is True, f"{name}.{secret} is not sensitive"
    assert {"state", "catalog", "discover", "about", "stream-maps"} <= set(
        PLUGINS["tap-dialfire"]["capabilities"]
    )
    assert PLUGINS["target-postgres"]["pip_url"] == "meltanolabs-target-postgres==0.8.1"
    for name in ("tap-dialfire", "target-dialfire-sql", "target-dialfire-webhook"):
        assert PLUGINS[name]["pip_url"] == "-e ${MELTANO_PROJECT_ROOT}"


def test_no_secret_is_written_in_meltano_yml() -> None:
    sensitive = {
        s["name"] for plugin in PLUGINS.values() for s in plugin.get("settings", [])
        if s.get("sensitive")
    }
    configs = [plugin.get("config", {}) for plugin in PLUGINS.values()] + [
        p.get("config", {})
        for env in MELTANO_YML["environments"]
        for kind in env.get("config", {}).get("plugins", {}).values()
        for p in kind
    ]
    for config in configs:
        for key, value in config.items():
            if key in sensitive:
                assert str(value).startswith("${"), f"{key} holds a value in meltano.yml"


@pytest.mark.parametrize(("environment", "schema"), [("dev", "dialfire_dev"), ("prod", "dialfire")])
def test_tables_are_named_like_dbsync2_in_one_schema(
    meltano_project: MeltanoProject, meltano_state_db: Path, environment: str, schema: str
) -> None:
    env = meltano_project.environment(meltano_state_db)
    postgres = json.loads(meltano_project.meltano(
        ["--environment", environment, "config", "print", "target-postgres"], env).stdout)
    assert postgres["default_target_schema"] == schema
    assert postgres["load_method"] == "upsert"
    assert postgres["stream_maps"] == {s: {"__alias__": f"dfire_{s}"} for s in STREAMS}
    sql = json.loads(meltano_project.meltano(
        ["--environment", environment, "config", "print", "target-dialfire-sql"], env).stdout)
    assert sql["table_prefix"] == "dfire_"

    # The schema is the user's choice, from the environment.
    env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] = "reports"
    chosen = json.loads(meltano_project.meltano(
        ["--environment", environment, "config", "print", "target-postgres"], env).stdout)
    assert chosen["default_target_schema"] == "reports"


def test_jobs_and_the_every_minute_schedule_cover_dbsync2s_modes(
    meltano_project: MeltanoProject, meltano_state_db: Path
) -> None:
    env = meltano_project.environment(meltano_state_db)
    listed = json.loads(
        meltano_project.meltano(["schedule", "list", "--format", "json"], env).stdout
    )
    schedules = {s["name"]: s for s in listed["schedules"]["job"]}
    follow = schedules["dialfire-sync-every-minute"]
    assert follow["cron_interval"] == "* * * * *"
    assert follow["job"]["tasks"] == ["tap-dialfire target-postgres"]
    jobs = {job["name"]: job["tasks"] for job in MELTANO_YML["jobs"]}
    assert jobs == {
        "dialfire-sync": ["tap-dialfire target-postgres"],
        "dialfire-sync-sql": ["tap-dialfire target-dialfire-sql"],
        "dialfire-webhook": ["tap-dialfire--raw target-dialfire-webhook"],
    }


def documented_config_commands() -> list[str]:
    """Every `meltano config …` command the user docs show (in backticks, joined across lines)."""
    commands: list[str] = []
    for doc in ("docs/meltano.md", "docs/migration.md"):
        text = " ".join((REPO_ROOT / doc).read_text().split())
        commands += re.findall(r"`(meltano config [^`]+)`", text)
    return commands


def test_the_documented_config_commands_run_and_redact_the_token(
    meltano_project: MeltanoProject, meltano_state_db: Path
) -> None:
    commands = documented_config_commands()
    assert commands, "docs/meltano.md names no `meltano config` command"
    token = "token-that-must-stay-hidden"
    env = meltano_project.environment(meltano_state_db, {
        "TAP_DIALFIRE_CAMPAIGN_ID": "ABCDEFGHJKLMNPQR", "TAP_DIALFIRE_CAMPAIGN_TOKEN": token,
    })
    for command in commands:
        result = meltano_project.meltano(shlex.split(command)[1:], env)
        assert "campaign_token" in result.stdout, command
        assert token not in result.stdout + result.stderr, command


def test_task_prefixes_from_the_environment_take_the_form_meltano_yml_describes(
    meltano_project: MeltanoProject, meltano_state_db: Path
) -> None:
    """Meltano parses an `array` setting's variable itself and accepts only JSON (or a Python
    literal); `fc_,qc_` ends in a traceback, so meltano.yml must not offer that form."""
    described = {s["name"]: s for s in PLUGINS["tap-dialfire"]["settings"]}["task_prefixes"]
    assert "'fc_,qc_'" not in described["description"]
    assert """TAP_DIALFIRE_TASK_PREFIXES='["fc_","qc_"]'""" in described["description"]
    env = meltano_project.environment(
        meltano_state_db, {"TAP_DIALFIRE_TASK_PREFIXES": '["fc_","qc_"]'}
    )
    config = json.loads(meltano_project.meltano(["config", "print", "tap-dialfire"], env).stdout)
    assert config["task_prefixes"] == ["fc_", "qc_"]
    env["TAP_DIALFIRE_TASK_PREFIXES"] = "fc_,qc_"
    refused = meltano_project.meltano(["config", "print", "tap-dialfire"], env, check=False)
    assert refused.returncode != 0
