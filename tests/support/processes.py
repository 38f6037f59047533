"""The project's real commands as a user runs them: `meltano install`, `meltano run`, shell pipes.

`meltano install` is slow on a cold machine, so it runs once per test session into a private
Meltano system directory (``MELTANO_SYS_DIR_ROOT``), exactly as a fresh clone would: the
developer's own `.meltano/` is never read or changed. Every test then gets its own Meltano system
database (``MELTANO_DATABASE_URI``), so no state leaks from one test to the next.

Every command's wall time is printed (visible with ``pytest -s`` or ``-rA``) and listed again in
an "end-to-end wall times" section at the end of the session's output.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MELTANO = str(VENV_BIN / "meltano")

#: Variables a developer's shell may carry that would point a test at a real campaign or database.
_FOREIGN_PREFIXES = (
    "TAP_DIALFIRE_", "TARGET_POSTGRES_", "TARGET_DIALFIRE_", "MELTANO_", "DIALFIRE_",
)

#: (what ran, seconds) for every timed command of this session, in order.
WALL_TIMES: list[tuple[str, float]] = []


def record_wall_time(what: str, seconds: float) -> None:
    """Note a command's wall time in the test output and in the session summary."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
    WALL_TIMES.append((f"{what}  [{test}]" if test else what, seconds))
    print(f"[wall time] {what}: {seconds:.1f}s", flush=True)


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without anything that could reach a real campaign, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MELTANO_CLI_DISABLE_VERSION_CHECK"] = "true"
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(extra or {})
    return env


@dataclass
class MeltanoProject:
    """This repository as a Meltano project whose plugins are installed in `sys_dir`."""

    root: Path
    sys_dir: Path
    install_seconds: float

    def plugin_executable(self, kind: str, name: str, executable: str | None = None) -> Path:
        """The console script Meltano installed for a plugin (`kind` is extractors/loaders)."""
        return self.sys_dir / kind / name / "venv" / "bin" / (executable or name)

    def environment(self, state_db: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for one test's Meltano commands: its own system database."""
        return clean_environment(
            {
                "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
                "MELTANO_DATABASE_URI": f"sqlite:///{state_db}",
                **(extra or {}),
            }
        )

    def meltano(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        timeout: float = 300,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `meltano <args>` in the project root; fail with its output when it fails."""
        return run_timed([MELTANO, *args], env=env, cwd=self.root, timeout=timeout, check=check)


def sync_environment(
    project: MeltanoProject,
    state_db: Path,
    sandbox: Any,
    schema: Any,
    **extra: str,
) -> dict[str, str]:
    """What a user exports to sync a campaign (a `Sandbox`) into PostgreSQL (a `PostgresSchema`):
    the campaign, its token, the database and the schema."""
    return project.environment(
        state_db,
        {
            "TAP_DIALFIRE_API_URL": sandbox.url,
            "TAP_DIALFIRE_CAMPAIGN_ID": sandbox.campaign_id,
            "TAP_DIALFIRE_CAMPAIGN_TOKEN": sandbox.token,
            "TARGET_POSTGRES_SQLALCHEMY_URL": schema.url,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema.name,
            **extra,
        },
    )


def run_timed(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path = REPO_ROOT,
    timeout: float = 300,
    check: bool = True,
    what: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run a command, record its wall time, and on failure fail the test with its output."""
    label = what or shlex.join(_short(command))
    started = time.monotonic()
    result = subprocess.run(
        list(command), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    record_wall_time(label, time.monotonic() - started)
    if check and result.returncode != 0:
        pytest.fail(
            f"{label} exited {result.returncode}\n"
            f"--- stderr (last 60 lines)\n{_tail(result.stderr, 60)}\n"
            f"--- stdout (last 20 lines)\n{_tail(result.stdout, 20)}",
            pytrace=False,
        )
    return result


def _short(command: Sequence[str]) -> list[str]:
    return [Path(part).name if os.sep in part and Path(part).exists() else part for part in command]


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def meltano_project(tmp_path_factory: pytest.TempPathFactory) -> MeltanoProject:
    """`meltano install` once per session, from this repository's meltano.yml only."""
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    env = clean_environment(
        {
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{sys_dir / 'install.db'}",
        }
    )
    started = time.monotonic()
    run_timed([MELTANO, "install"], env=env, cwd=REPO_ROOT, timeout=900)
    return MeltanoProject(REPO_ROOT, sys_dir, time.monotonic() - started)


@pytest.fixture
def meltano_state_db(tmp_path: Path) -> Path:
    """A Meltano system database (state, runs) private to one test."""
    return tmp_path / "meltano-state.db"


@dataclass
class BackgroundCommand:
    """A command running in its own process group, so it and its children can be killed."""

    what: str
    process: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_for_descendant(
        self, name_part: str, *, with_argument: str | None = None, timeout: float = 60
    ) -> psutil.Process:
        """The first child process whose command line mentions `name_part` (and `with_argument`,
        e.g. `--catalog` to tell Meltano's sync invocation of a tap from its `--discover` one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.descendants():
                try:
                    cmdline = child.cmdline()
                    if any(name_part in part for part in cmdline) and (
                        with_argument is None or with_argument in cmdline
                    ):
                        return child
                except psutil.Error:
                    continue
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no process running {name_part!r} appeared under {self.what}")

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Wait for the command, record its wall time, return (exit code, stdout, stderr)."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        finally:
            record_wall_time(self.what, time.monotonic() - self.started)
        return self.process.returncode, out, err

    def stop(self) -> None:
        """Kill the whole process group (used on test failure so nothing is left running)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.communicate()


def start_background(
    command: Sequence[str] | str, *, env: Mapping[str, str], cwd: Path = REPO_ROOT, what: str = ""
) -> BackgroundCommand:
    """Start a command (a list, or a shell line for pipes) in a new process group."""
    shell = isinstance(command, str)
    process = subprocess.Popen(
        command if shell else list(command),
        shell=shell,
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    label = what or (command if isinstance(command, str) else shlex.join(_short(command)))
    return BackgroundCommand(label, process)


@pytest.fixture
def background() -> Iterator[list[BackgroundCommand]]:
    """Collects background commands a test starts and kills any still running at its end."""
    started: list[BackgroundCommand] = []
    yield started
    for command in started:
        command.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every end-to-end command's wall time, so slow runs show in every CI log."""
    if not WALL_TIMES:
        return
    terminalreporter.section("end-to-end wall times")
    for what, seconds in WALL_TIMES:
        terminalreporter.write_line(f"{seconds:7.1f}s  {what}")
