# PostgreSQL: its own cluster in the state folder, run as the postgres user when we are root.
# Sourced by scripts/services.

service postgres pg default
readonly POSTGRES_PORT="${GPUBROKER_POSTGRES_PORT:-15432}"
readonly PG_USER=gpubroker PG_PASSWORD=gpubroker PG_DATABASE=gpubroker

pg_init() { :; }
pg_packages() { pg_bindir >/dev/null || echo postgresql; }
pg_address() { echo "postgresql://$PG_USER@$HOST:$POSTGRES_PORT/$PG_DATABASE"; }
pg_env() { echo "export GPUBROKER_DATABASE_URL=postgresql://$PG_USER:$PG_PASSWORD@$HOST:$POSTGRES_PORT/$PG_DATABASE"; }

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

PG_BIN="" PG_BASE="" PG_DATA="" PG_SOCK="" PG_LOG="" PG_CTL_JOB=""
# As root, PostgreSQL runs as the postgres OS user (initdb refuses root); otherwise as us.
AS_PG=()
[[ $EUID -eq 0 ]] && AS_PG=(runuser -u postgres --)
as_pg() { "${AS_PG[@]}" "$@"; }

# Sets the PG_* paths; returns non-zero when no PostgreSQL binaries are installed.
pg_init_paths() {
  PG_BASE="$STATE_DIR/postgres"
  PG_LOG="$LOG_DIR/postgres.log"
  if [[ -L "$PG_BASE" ]]; then # relocated, see pg_prepare_dirs
    PG_BASE="$(readlink -f "$PG_BASE")"
    PG_LOG="$PG_BASE/postgres.log"
  fi
  PG_DATA="$PG_BASE/data"
  PG_SOCK="$PG_BASE/run"
  PG_BIN="$(pg_bindir)"
}

# The cluster lives in <state>/postgres, owned by the postgres user. If that user cannot
# reach the state dir (e.g. it is under a mode-700 home) or the socket path would be too
# long, the cluster (and its server log) goes to /var/tmp and <state>/postgres becomes a
# symlink to it (<state>/logs/postgres.log then links to the log).
pg_prepare_dirs() {
  mkdir -p "$PG_BASE"
  [[ $EUID -eq 0 ]] && chown postgres: "$PG_BASE" && chmod 700 "$PG_BASE"
  if ! as_pg test -w "$PG_BASE" || ((${#PG_SOCK} > 90)); then
    local alt
    alt="/var/tmp/gpubroker-pg-$(printf '%s' "$STATE_DIR" | sha1sum | cut -c1-12)"
    say "postgres: $PG_BASE is not usable by the postgres user; using $alt"
    rm -rf "$PG_BASE"
    mkdir -p "$alt"
    [[ $EUID -eq 0 ]] && chown postgres: "$alt" && chmod 700 "$alt"
    ln -sfn "$alt" "$STATE_DIR/postgres"
    pg_init_paths
    ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
  fi
  as_pg mkdir -p "$PG_SOCK"
  touch "$PG_LOG"
  [[ $EUID -eq 0 ]] && chown postgres: "$PG_LOG"
  return 0
}

pg_pid() { read_pidfile "$PG_DATA/postmaster.pid"; }
pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$POSTGRES_PORT" -d postgres -t 1 >/dev/null 2>&1; }
pg_alive() { pg_init_paths && pid_matches "$(pg_pid)" postgres; }
pg_running() { pg_alive && pg_ready; }

pg_start() {
  pg_init_paths || fail postgres "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin"
  pg_prepare_dirs
  local log="$PG_LOG" local_auth=peer
  # Not root: the superuser role is "postgres" but we are not, so peer auth can't match.
  [[ $EUID -eq 0 ]] || local_auth=trust
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    say "postgres: initdb (one-time)"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local="$local_auth" --auth-host=scram-sha-256 >>"$log" 2>&1 ||
      fail postgres "initdb failed" "$log"
  fi
  ensure_port_free postgres "$POSTGRES_PORT"
  # pg_ctl waits for the server in the background (own session so the postmaster outlives
  # this shell); pg_wait collects it, so the other services start meanwhile.
  setsid "${AS_PG[@]}" "$PG_BIN/pg_ctl" start -w -t "$START_TIMEOUT" -D "$PG_DATA" -l "$log" \
    -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -p $POSTGRES_PORT -k $PG_SOCK -c listen_addresses=$HOST" \
    </dev/null >>"$log" 2>&1 9>&- &
  PG_CTL_JOB=$!
}

pg_psql() { as_pg "$PG_BIN/psql" -X -q -h "$PG_SOCK" -p "$POSTGRES_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }

pg_wait() {
  local log="$PG_LOG"
  if [[ -n "$PG_CTL_JOB" ]]; then
    wait "$PG_CTL_JOB" || fail postgres "pg_ctl start failed" "$log"
  fi
  wait_until postgres "$log" pg_pid pg_ready
  # Role and database, idempotently (CREATEDB: Django's test runner creates test databases).
  pg_psql -d postgres >>"$log" 2>&1 <<SQL || fail postgres "creating role/database $PG_USER failed" "$log"
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$PG_USER', '$PG_PASSWORD')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DATABASE', '$PG_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DATABASE') \gexec
SQL
}

pg_stop() {
  pg_init_paths || return 0
  [[ -f "$PG_DATA/PG_VERSION" ]] || return 0
  if pid_matches "$(pg_pid)" postgres; then
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 >>"$PG_LOG" 2>&1 ||
      stop_pid postgres "$(pg_pid)" postgres 5
  fi
}

pg_wipe() {
  pg_init_paths || true
  [[ -n "$PG_BASE" ]] && rm -rf "$PG_BASE"
  rm -rf "$STATE_DIR/postgres"
  [[ -L "$LOG_DIR/postgres.log" ]] && rm -f "$LOG_DIR/postgres.log"
  return 0
}
