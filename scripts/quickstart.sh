#!/usr/bin/env bash
# The README's first command: install everything, sync one Dialfire campaign into an SQLite file
# with `meltano run tap-dialfire target-dialfire-sql`, and print how many rows landed per table.
#
# - With TAP_DIALFIRE_CAMPAIGN_ID and TAP_DIALFIRE_CAMPAIGN_TOKEN both set, it syncs that real
#   campaign into output/dialfire.db: everything the first time (or whenever that file is
#   missing), then only what changed since the last run (the change feed). Its position is kept
#   under its own state id (`dev:tap-dialfire-to-target-dialfire-sql:quickstart-<campaign id>`).
# - With neither set, it starts the local API sandbox on a free loopback port, syncs its demo
#   campaign into output/dialfire-sandbox.db (fresh on every run, kept apart from real data and
#   real state), and stops the sandbox again, also on failure or Ctrl-C.
#
# Safe to run again and again; works from a fresh clone (it runs scripts/setup.sh first).
# Overrides: QUICKSTART_DB (the SQLite file), QUICKSTART_CONTACTS / QUICKSTART_SEED (sandbox size).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '== %s\n' "$*"; }
fail() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

if [[ -n "${TAP_DIALFIRE_CAMPAIGN_ID:-}${TAP_DIALFIRE_CAMPAIGN_TOKEN:-}" \
      && ( -z "${TAP_DIALFIRE_CAMPAIGN_ID:-}" || -z "${TAP_DIALFIRE_CAMPAIGN_TOKEN:-}" ) ]]; then
  fail "only one of TAP_DIALFIRE_CAMPAIGN_ID and TAP_DIALFIRE_CAMPAIGN_TOKEN is set; set both to sync a real campaign, or neither to try the sandbox"
fi

say "installing the project into .venv (scripts/setup.sh)"
bash scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"

say "installing the Meltano plugins (meltano install)"
meltano install >"${TMPDIR:-/tmp}/quickstart-meltano-install.log" 2>&1 \
  || { tail -n 20 "${TMPDIR:-/tmp}/quickstart-meltano-install.log" >&2
       fail "meltano install failed (log above); check the network access to PyPI and retry"; }

mkdir -p output
run_args=()
if [[ -n "${TAP_DIALFIRE_CAMPAIGN_ID:-}" && -n "${TAP_DIALFIRE_CAMPAIGN_TOKEN:-}" ]]; then
  db=${QUICKSTART_DB:-output/dialfire.db}
  # The position covers this SQLite file and this campaign only: keep it under its own state id,
  # so that a later `meltano run tap-dialfire target-dialfire-sql` into another database, or the
  # quickstart with another campaign, starts with everything.
  run_args=(--state-id-suffix "quickstart-${TAP_DIALFIRE_CAMPAIGN_ID}")
  if [[ -s "$db" ]]; then
    say "syncing Dialfire campaign ${TAP_DIALFIRE_CAMPAIGN_ID} into ${db} (changes since the last run)"
  else
    # Meltano's saved position only means something for the rows it covers: without the
    # database file, start over instead of continuing from a position whose rows are gone.
    run_args+=(--full-refresh)
    say "syncing Dialfire campaign ${TAP_DIALFIRE_CAMPAIGN_ID} into ${db} (everything: no database yet)"
  fi
else
  db=${QUICKSTART_DB:-output/dialfire-sandbox.db}
  token=quickstart-sandbox-token
  log=output/sandbox.log
  say "no campaign in the environment: starting the Dialfire sandbox (demo data) on 127.0.0.1"
  dialfire-sandbox serve --port 0 --seed "${QUICKSTART_SEED:-7}" \
    --contacts "${QUICKSTART_CONTACTS:-200}" --token "$token" >"$log" 2>&1 &
  sandbox_pid=$!
  trap 'kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true' EXIT
  # `serve` prints {"url": ..., "campaign_id": ...} once it listens; wait for that line.
  sandbox=$(python - "$sandbox_pid" "$log" <<'PY'
import json, os, sys, time
pid, log = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    with open(log, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("{"):
                info = json.loads(line)
                print(info["url"], info["campaign_id"])
                sys.exit(0)
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)  # the sandbox process exited
    time.sleep(0.1)
sys.exit(1)
PY
  ) || { tail -n 20 "$log" >&2; fail "the sandbox did not start (its log is above)"; }
  read -r sandbox_url campaign <<<"$sandbox"
  export TAP_DIALFIRE_API_URL=$sandbox_url
  export TAP_DIALFIRE_CAMPAIGN_ID=$campaign TAP_DIALFIRE_CAMPAIGN_TOKEN=$token
  # The demo never shares a position with a real campaign, and starts over every time.
  rm -f "$db"
  run_args=(--state-id-suffix sandbox --full-refresh)
  say "syncing the sandbox campaign into ${db}"
fi

export TARGET_DIALFIRE_SQL_URL="$root/$db"
[[ "$db" = /* ]] && export TARGET_DIALFIRE_SQL_URL="$db"
runlog=output/quickstart-run.log
say "meltano run tap-dialfire target-dialfire-sql (progress: tail -f ${runlog})"
started=$(date +%s)
if ! meltano run "${run_args[@]}" tap-dialfire target-dialfire-sql >"$runlog" 2>&1; then
  grep -F '[error' "$runlog" | grep -vF 'Block run completed' | cut -c1-400 | tail -n 5 >&2 || true
  fail "meltano run tap-dialfire target-dialfire-sql failed (errors above, full log in ${runlog}); the saved position only covers stored rows, so fix the cause and run this again"
fi
say "done in $(( $(date +%s) - started ))s; rows per table in ${TARGET_DIALFIRE_SQL_URL}:"
python - "$TARGET_DIALFIRE_SQL_URL" <<'PY'
import sqlite3, sys
with sqlite3.connect(sys.argv[1]) as db:
    tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table' order by name")]
    for table in tables:
        count = db.execute(f'select count(*) from "{table}"').fetchone()[0]
        print(f"   {table:<28} {count:>8}")
PY
