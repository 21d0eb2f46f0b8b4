# Apache Flink: a local session cluster (one JobManager, one TaskManager) for the stream
# analytics jobs in flink/. Optional: started only by `scripts/services up flink` (or `all`).
# Sourced by scripts/services.
#
# Flink comes from PyPI (apache-flink, pinned by the jobs package, flink/pyproject.toml) in its
# own virtual environment, which also holds the jobs package and gpubroker.core; the Kafka SQL
# connector of the matching version comes from Maven (scripts/flink/pom.xml). Both are installed
# once.

service flink flink optional
readonly FLINK_REST_PORT="${GPUBROKER_FLINK_REST_PORT:-18081}"
readonly FLINK_RPC_PORT="${GPUBROKER_FLINK_RPC_PORT:-16123}"
readonly FLINK_TASKMANAGER_PORT="${GPUBROKER_FLINK_TASKMANAGER_PORT:-16124}"
readonly FLINK_TEMPLATE_DIR="$REPO_ROOT/scripts/flink"

flink_init() {
  FLINK_DIR="$STATE_DIR/flink"
  FLINK_VENV="$STATE_DIR/flink-venv"
  FLINK_CONNECTORS="$FLINK_DIR/connectors"
  FLINK_LIB="$FLINK_DIR/lib"
  FLINK_CONF="$FLINK_DIR/conf"
}
flink_download() { flink_ensure_venv && flink_ensure_connectors; }
flink_address() { flink_url; }
flink_env() {
  echo "export GPUBROKER_FLINK_REST=$(flink_url)"
  echo "export GPUBROKER_FLINK_PYTHON=$(printf '%q' "$FLINK_VENV/bin/python")"
  echo "export GPUBROKER_FLINK_CONF_DIR=$(printf '%q' "$FLINK_CONF")"
  echo "export GPUBROKER_FLINK_LIB_DIR=$(printf '%q' "$FLINK_LIB")"
}

flink_url() { echo "http://$HOST:$FLINK_REST_PORT"; }
flink_jm_pidfile() { echo "$FLINK_DIR/jobmanager.pid"; }
flink_tm_pidfile() { echo "$FLINK_DIR/taskmanager.pid"; }
flink_jm_pid() { read_pidfile "$(flink_jm_pidfile)"; }
flink_tm_pid() { read_pidfile "$(flink_tm_pidfile)"; }
flink_alive() {
  pid_matches "$(flink_jm_pid)" StandaloneSessionClusterEntrypoint &&
    pid_matches "$(flink_tm_pid)" TaskManagerRunner
}
# Ready once the JobManager answers and the TaskManager has registered its slots.
flink_ready() {
  curl -s --max-time 2 "$(flink_url)/overview" 2>/dev/null | grep -q '"taskmanagers":[1-9]'
}
flink_running() { flink_alive && flink_ready; }
flink_home() { echo "$FLINK_VENV/lib/python3"*/site-packages/pyflink; }

flink_requirements_sum() { sha256sum "$REPO_ROOT/flink/pyproject.toml" | cut -d' ' -f1; }

# apache-flink and the jobs package (editable, with gpubroker.core), once and again when
# flink/pyproject.toml changes. The product is installed without its dependencies: the jobs use
# only gpubroker.core, whose few needs the jobs package declares.
flink_ensure_venv() {
  local stamp="$FLINK_VENV/.pyproject.sha256" log="$LOG_DIR/install.log"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(flink_requirements_sum)" ]] && return 0
  say "flink: installing apache-flink and the jobs into $FLINK_VENV (one-time, 1-3 min)"
  [[ -x "$FLINK_VENV/bin/python" ]] || python3 -m venv "$FLINK_VENV" >>"$log" 2>&1 ||
    fail flink "python3 -m venv failed" "$log"
  local pip=("$FLINK_VENV/bin/pip" install -q --disable-pip-version-check)
  "${pip[@]}" --no-deps -e "$REPO_ROOT" >>"$log" 2>&1 || fail flink "pip install gpubroker (core) failed" "$log"
  "${pip[@]}" -e "$REPO_ROOT/flink" >>"$log" 2>&1 || fail flink "pip install -e flink failed" "$log"
  flink_requirements_sum >"$stamp"
}

flink_pom_sum() { sha256sum "$FLINK_TEMPLATE_DIR/pom.xml" | cut -d' ' -f1; }

# The Kafka SQL connector from Maven (once, and again only when scripts/flink/pom.xml changes).
flink_ensure_connectors() {
  local stamp="$FLINK_CONNECTORS/.pom.sha256" log="$LOG_DIR/install.log"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(flink_pom_sum)" ]] && return 0
  command -v mvn >/dev/null || fail flink "mvn not found (needed once to fetch the Kafka connector)"
  say "flink: fetching the Kafka connector with Maven (one-time)"
  rm -rf "$FLINK_CONNECTORS" "$FLINK_CONNECTORS.tmp"
  mkdir -p "$FLINK_DIR"
  mvn -q -B -f "$FLINK_TEMPLATE_DIR/pom.xml" dependency:copy-dependencies -DexcludeTransitive=true \
    -DoutputDirectory="$FLINK_CONNECTORS.tmp" >>"$log" 2>&1 ||
    fail flink "mvn dependency:copy-dependencies failed" "$log"
  flink_pom_sum >"$FLINK_CONNECTORS.tmp/.pom.sha256"
  mv "$FLINK_CONNECTORS.tmp" "$FLINK_CONNECTORS"
}

# The cluster's lib folder: Flink's own jars plus the connectors, so every job (and the
# `flink` client) finds the Kafka connector as it would in a production image's lib/; and
# flink-python, whose embedded interpreter (PEMJA, for Python functions in thread mode) can be
# loaded once per JVM only, so it must come from lib/ for every job rather than from each job's
# own class loader (see classloader.parent-first-patterns.additional in the config).
flink_write_lib() {
  rm -rf "$FLINK_LIB"
  mkdir -p "$FLINK_LIB"
  ln -s "$(flink_home)"/lib/*.jar "$(flink_home)"/opt/flink-python-*.jar "$FLINK_CONNECTORS"/*.jar "$FLINK_LIB/"
}

flink_write_config() {
  local home
  home="$(flink_home)"
  mkdir -p "$FLINK_CONF" "$FLINK_DIR/tmp"
  sed -e "s|@HOST@|$HOST|g" -e "s|@REST_PORT@|$FLINK_REST_PORT|g" -e "s|@RPC_PORT@|$FLINK_RPC_PORT|g" \
    -e "s|@TASKMANAGER_PORT@|$FLINK_TASKMANAGER_PORT|g" -e "s|@STATE_DIR@|$FLINK_DIR|g" \
    -e "s|@PYTHON@|$FLINK_VENV/bin/python|g" "$FLINK_TEMPLATE_DIR/config.yaml.in" >"$FLINK_CONF/config.yaml"
  cp "$home"/conf/log4j-console.properties "$home"/conf/log4j-cli.properties "$FLINK_CONF/"
}

# flink_daemon PIDFILE SCRIPT: a JobManager or TaskManager in the foreground of its own session
# (flink-console.sh execs the JVM, so the pid recorded is the JVM's).
flink_daemon() {
  local pidfile="$1" script="$2"
  spawn "$pidfile" "$LOG_DIR/flink.log" env FLINK_CONF_DIR="$FLINK_CONF" FLINK_LIB_DIR="$FLINK_LIB" \
    FLINK_LOG_DIR="$FLINK_DIR/log" FLINK_PID_DIR="$FLINK_DIR" PATH="$FLINK_VENV/bin:$PATH" \
    "$(flink_home)/bin/$script" start-foreground
}

flink_start() {
  local port
  for port in "$FLINK_REST_PORT" "$FLINK_RPC_PORT" "$FLINK_TASKMANAGER_PORT"; do
    ensure_port_free flink "$port"
  done
  flink_ensure_venv
  flink_ensure_connectors
  flink_write_lib
  flink_write_config
  flink_daemon "$(flink_jm_pidfile)" jobmanager.sh
  flink_daemon "$(flink_tm_pidfile)" taskmanager.sh
}

# Either process dying during start-up is a failure (wait_until watches one pid).
flink_any_dead_pid() {
  local pid
  for pid in "$(flink_jm_pid)" "$(flink_tm_pid)"; do
    if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
      echo "$pid"
      return
    fi
  done
  flink_jm_pid
}

flink_wait() { wait_until flink "$LOG_DIR/flink.log" flink_any_dead_pid flink_ready; }

flink_stop() {
  stop_pid flink-taskmanager "$(flink_tm_pid)" TaskManagerRunner 30
  stop_pid flink-jobmanager "$(flink_jm_pid)" StandaloneSessionClusterEntrypoint 30
}

# Jobs, checkpoints and savepoints go; the environment and the connector jar stay.
flink_wipe() {
  rm -rf "$FLINK_DIR/checkpoints" "$FLINK_DIR/savepoints" "$FLINK_DIR/tmp" "$FLINK_DIR/log" "$FLINK_LIB" \
    "$FLINK_CONF"
  rm -f "$(flink_jm_pidfile)" "$(flink_tm_pidfile)"
}
