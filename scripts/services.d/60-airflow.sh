# Apache Airflow 3 for the DAGs in dags/: a scheduler, a DAG processor and an API server on
# loopback, LocalExecutor (never Celery), its metadata in its own PostgreSQL database on the
# postgres service. Installed once into its own virtual environment (<state>/airflow-venv) from
# dags/requirements.txt, with the product and its plugins added without their dependencies, so
# the DAGs can use gpubroker.core while Django never enters that environment.
# Optional: started only when named (`scripts/services up airflow`). Sourced by scripts/services.

service airflow airflow optional
readonly AIRFLOW_PORT="${GPUBROKER_AIRFLOW_PORT:-18080}"
readonly AIRFLOW_DB=airflow AIRFLOW_DB_USER=airflow AIRFLOW_DB_PASSWORD=airflow
readonly AIRFLOW_USER=admin
readonly AIRFLOW_PROCESSES=(scheduler dag-processor api-server)

airflow_init() {
  AIRFLOW_DIR="$STATE_DIR/airflow"
  AIRFLOW_VENV="$STATE_DIR/airflow-venv"
}
airflow_download() { airflow_ensure_venv; }
airflow_address() { echo "http://$HOST:$AIRFLOW_PORT"; }
# The venv and the configuration are printed once installed, the API server only while it runs.
airflow_env() {
  [[ -x "$AIRFLOW_VENV/bin/airflow" ]] || return 0
  echo "export GPUBROKER_AIRFLOW_PYTHON=$AIRFLOW_VENV/bin/python"
  echo "export GPUBROKER_AIRFLOW_HOME=$AIRFLOW_DIR/home"
  if airflow_running; then
    echo "export GPUBROKER_AIRFLOW_URL=$(airflow_address)"
    echo "export GPUBROKER_AIRFLOW_USER=$AIRFLOW_USER"
    echo "export GPUBROKER_AIRFLOW_PASSWORD=$(airflow_password)"
  fi
  return 0
}

# What the venv is made from: reinstalled when one of these changes.
airflow_inputs_sum() {
  cat "$REPO_ROOT/dags/requirements.txt" "$REPO_ROOT/pyproject.toml" "$REPO_ROOT"/plugins/*/pyproject.toml | sha256sum | cut -d' ' -f1
}

airflow_ensure_venv() {
  local stamp="$AIRFLOW_VENV/.gpubroker-installed" log="$LOG_DIR/install.log"
  [[ -x "$AIRFLOW_VENV/bin/airflow" && "$(cat "$stamp" 2>/dev/null)" == "$(airflow_inputs_sum)" ]] && return 0
  mkdir -p "$AIRFLOW_DIR"
  exec 7>"$AIRFLOW_DIR/.install.lock"
  flock 7
  if [[ ! -x "$AIRFLOW_VENV/bin/airflow" || "$(cat "$stamp" 2>/dev/null)" != "$(airflow_inputs_sum)" ]]; then
    local t0=$SECONDS plugins=()
    say "airflow: installing Airflow and the DAGs' dependencies into $AIRFLOW_VENV (one-time)"
    [[ -x "$AIRFLOW_VENV/bin/python" ]] || python3 -m venv "$AIRFLOW_VENV" >>"$log" 2>&1 ||
      fail airflow "python3 -m venv failed" "$log"
    "$AIRFLOW_VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO_ROOT/dags/requirements.txt" \
      >>"$log" 2>&1 || fail airflow "pip install -r dags/requirements.txt failed" "$log"
    for plugin in "$REPO_ROOT"/plugins/*/pyproject.toml; do plugins+=(-e "$(dirname "$plugin")"); done
    # The product and the plugins without their dependencies: the gateway's (Django, Channels,
    # granian, ...) stay out; what the DAGs use of the product is in dags/requirements.txt.
    "$AIRFLOW_VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e "$REPO_ROOT" "${plugins[@]}" \
      >>"$log" 2>&1 || fail airflow "installing the product into the Airflow environment failed" "$log"
    airflow_inputs_sum >"$stamp"
    say "airflow: installed in $((SECONDS - t0))s"
  fi
  exec 7>&-
}

# A random password for the API's admin user and a random JWT secret shared by the components,
# made once and kept in the state folder (never in the repo).
airflow_secret() {
  local f="$AIRFLOW_DIR/$1"
  if [[ ! -s "$f" ]]; then
    mkdir -p "$AIRFLOW_DIR"
    (umask 077 && od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$f")
  fi
  cat "$f"
}
airflow_password() { airflow_secret password; }

# airflow.cfg, rewritten on every start (the ports may have changed); every process that sets
# AIRFLOW_HOME to $AIRFLOW_DIR/home (the components, dag.test() in the tests) reads it.
airflow_write_config() {
  local home="$AIRFLOW_DIR/home"
  mkdir -p "$home" "$AIRFLOW_DIR/logs"
  (umask 077 && printf '{"%s": "%s"}\n' "$AIRFLOW_USER" "$(airflow_password)" >"$AIRFLOW_DIR/passwords.json")
  (umask 077 && cat >"$home/airflow.cfg") <<EOF
[core]
dags_folder = $REPO_ROOT/dags
executor = LocalExecutor
load_examples = False
dags_are_paused_at_creation = True
parallelism = 4
execution_api_server_url = http://$HOST:$AIRFLOW_PORT/execution/
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_users = $AIRFLOW_USER:admin
simple_auth_manager_passwords_file = $AIRFLOW_DIR/passwords.json

[database]
sql_alchemy_conn = postgresql+psycopg2://$AIRFLOW_DB_USER:$AIRFLOW_DB_PASSWORD@$HOST:$POSTGRES_PORT/$AIRFLOW_DB

[api]
host = $HOST
port = $AIRFLOW_PORT
workers = 1

[api_auth]
jwt_secret = $(airflow_secret jwt-secret)

[logging]
base_log_folder = $AIRFLOW_DIR/logs

[scheduler]
enable_health_check = False
EOF
}

airflow_run() { env AIRFLOW_HOME="$AIRFLOW_DIR/home" "$AIRFLOW_VENV/bin/airflow" "$@"; }
airflow_pidfile() { echo "$AIRFLOW_DIR/$1.pid"; }
airflow_pid() { read_pidfile "$(airflow_pidfile api-server)"; }
# What each component's command line holds (the API server renames itself "airflow api_server").
airflow_pattern() { echo "airflow ${1%%-*}"; }
airflow_alive() {
  local p
  for p in "${AIRFLOW_PROCESSES[@]}"; do
    pid_matches "$(read_pidfile "$(airflow_pidfile "$p")")" "$(airflow_pattern "$p")" || return 1
  done
}
airflow_healthy() {
  [[ "$(curl -s --max-time 2 "$(airflow_address)/api/v2/monitor/health" 2>/dev/null)" == *'"scheduler"'*'"healthy"'* ]]
}
airflow_running() { airflow_alive && airflow_healthy; }

# Its own role and database on the postgres service (started first if it is not running), and
# the metadata schema, migrated once per Airflow release, and again whenever the database has no
# schema (the postgres cluster was wiped under a kept stamp).
airflow_prepare_database() {
  pg_running || { pg_start && pg_wait; }
  local log="$LOG_DIR/airflow.log"
  pg_psql -d postgres >>"$log" 2>&1 <<SQL || fail airflow "creating the airflow role/database failed" "$log"
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', '$AIRFLOW_DB_USER', '$AIRFLOW_DB_PASSWORD')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$AIRFLOW_DB_USER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$AIRFLOW_DB', '$AIRFLOW_DB_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$AIRFLOW_DB') \gexec
SQL
  local version stamp="$AIRFLOW_DIR/db.migrated"
  version="$("$AIRFLOW_VENV/bin/python" -c 'import airflow; print(airflow.__version__)')"
  local schema
  schema="$(pg_psql -d "$AIRFLOW_DB" -tA -c "SELECT to_regclass('public.alembic_version') IS NOT NULL" 2>>"$log")"
  if [[ "$schema" != t || "$(cat "$stamp" 2>/dev/null)" != "$version:$POSTGRES_PORT" ]]; then
    say "airflow: migrating its metadata database (once per release)"
    airflow_run db migrate >>"$log" 2>&1 || fail airflow "airflow db migrate failed" "$log"
    echo "$version:$POSTGRES_PORT" >"$stamp"
  fi
}

airflow_start() {
  ensure_port_free airflow "$AIRFLOW_PORT"
  airflow_ensure_venv
  airflow_write_config
  airflow_prepare_database
  local p
  for p in "${AIRFLOW_PROCESSES[@]}"; do
    spawn "$(airflow_pidfile "$p")" "$LOG_DIR/airflow.log" \
      env AIRFLOW_HOME="$AIRFLOW_DIR/home" "$AIRFLOW_VENV/bin/airflow" "$p"
  done
}

airflow_wait() { wait_until airflow "$LOG_DIR/airflow.log" airflow_pid airflow_healthy; }

airflow_stop() {
  local p
  for p in "${AIRFLOW_PROCESSES[@]}"; do
    stop_pid airflow "$(read_pidfile "$(airflow_pidfile "$p")")" "$(airflow_pattern "$p")" 30
  done
}

# The venv, the secrets and the configuration are kept; the metadata database and the logs are not.
airflow_wipe() {
  if pg_running 2>/dev/null; then
    pg_psql -d postgres -c "DROP DATABASE IF EXISTS $AIRFLOW_DB WITH (FORCE)" >>"$LOG_DIR/airflow.log" 2>&1 || true
  fi
  rm -rf "$AIRFLOW_DIR/logs" "$AIRFLOW_DIR/db.migrated" "$AIRFLOW_DIR"/*.pid
}
