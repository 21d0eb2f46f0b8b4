# OpenBao configured as in production: Raft storage kept on disk, TLS with a CA made here by
# openssl, initialised with Shamir unseal keys and unsealed by this script on every start, KV v2 at
# secret/, AppRole, and the least-privilege policies and roles that `gpubroker vault apply`
# generates from the installed plugins (one per provider's worker, one for the gateway).
# Optional: the dev-mode `vault` stays the default for every other test; `scripts/test` starts
# this one too. Sourced by scripts/services, after 40-vault.sh (it shares the bao binary).

service vault-secure vault_secure optional
# Beside the dev server's API port and its cluster port (VAULT_PORT + 1).
readonly VAULT_SECURE_PORT="${GPUBROKER_VAULT_SECURE_PORT:-$((VAULT_PORT + 2))}"
readonly VAULT_SECURE_CLUSTER_PORT="${GPUBROKER_VAULT_SECURE_CLUSTER_PORT:-$((VAULT_PORT + 3))}"
readonly VAULT_SECURE_SHARES=3 VAULT_SECURE_THRESHOLD=2

vault_secure_init() {
  VS_DIR="$STATE_DIR/vault-secure"
  VS_TLS="$VS_DIR/tls"
}
vault_secure_packages() { command -v openssl >/dev/null || echo openssl; }
vault_secure_download() { vault_ensure_binary; }
vault_secure_address() { vault_secure_url; }
# Printed only while it runs, so that a test never finds an address with nothing behind it (the
# tests' fixture starts the service when these are missing).
vault_secure_env() {
  vault_secure_running || return 0
  echo "export GPUBROKER_VAULT_SECURE_ADDR=$(vault_secure_url)"
  echo "export GPUBROKER_VAULT_SECURE_CA_CERT=$(printf '%q' "$VS_TLS/ca.pem")"
  echo "export GPUBROKER_VAULT_SECURE_TOKEN_FILE=$(printf '%q' "$VS_DIR/root-token")"
}

vault_secure_url() { echo "https://$HOST:$VAULT_SECURE_PORT"; }
vault_secure_pid() { read_pidfile "$VS_DIR/bao.pid"; }
vault_secure_alive() { pid_matches "$(vault_secure_pid)" "bao server -config=$VS_DIR/config.hcl"; }
# /v1/sys/health answers 200 when unsealed and active, 501 before initialisation, 503 when sealed;
# 000 means no TLS connection could be made with our CA.
vault_secure_health() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$VS_TLS/ca.pem" \
    "$(vault_secure_url)/v1/sys/health" 2>/dev/null || true
}
vault_secure_listening() { [[ "$(vault_secure_health)" =~ ^(200|429|501|503)$ ]]; }
vault_secure_active() { [[ "$(vault_secure_health)" == 200 ]]; }
vault_secure_running() { vault_secure_alive && vault_secure_active; }

# A CA and a server certificate for 127.0.0.1 and localhost, made once (the server's again when it
# is within a week of expiry). Private keys are readable by their owner only.
vault_secure_tls() {
  local log="$LOG_DIR/vault-secure.log"
  mkdir -p "$VS_TLS"
  chmod 700 "$VS_TLS"
  if [[ ! -s "$VS_TLS/ca.pem" || ! -s "$VS_TLS/ca.key" ]]; then
    rm -f "$VS_TLS"/*
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout "$VS_TLS/ca.key" -out "$VS_TLS/ca.pem" -subj "/CN=GPUBROKER local services CA" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign") \
      >>"$log" 2>&1 || fail vault-secure "openssl could not make the CA" "$log"
    chmod 644 "$VS_TLS/ca.pem" # a certificate is public; its key is not
  fi
  if [[ -s "$VS_TLS/server.pem" ]] && openssl x509 -checkend 604800 -noout -in "$VS_TLS/server.pem" >/dev/null 2>&1; then
    return 0
  fi
  (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$VS_TLS/server.key" -out "$VS_TLS/server.csr" -subj "/CN=$HOST") >>"$log" 2>&1 ||
    fail vault-secure "openssl could not make the server key" "$log"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:$HOST,DNS:localhost" >"$VS_TLS/server.ext"
  openssl x509 -req -in "$VS_TLS/server.csr" -CA "$VS_TLS/ca.pem" -CAkey "$VS_TLS/ca.key" -CAcreateserial \
    -days 365 -extfile "$VS_TLS/server.ext" -out "$VS_TLS/server.pem" >>"$log" 2>&1 ||
    fail vault-secure "openssl could not sign the server certificate" "$log"
  rm -f "$VS_TLS/server.csr" "$VS_TLS/server.ext"
}

# Raft is OpenBao's production storage (the Helm values in k8s/ use it too); one node here.
# performance_multiplier 1 is the production timing: the leader is elected in about a second.
vault_secure_config() {
  cat >"$VS_DIR/config.hcl" <<EOF
# Written by scripts/services on every start.
storage "raft" {
  path                   = "$VS_DIR/raft"
  node_id                = "gpubroker-local"
  performance_multiplier = 1
}
listener "tcp" {
  address         = "$HOST:$VAULT_SECURE_PORT"
  cluster_address = "$HOST:$VAULT_SECURE_CLUSTER_PORT"
  tls_cert_file   = "$VS_TLS/server.pem"
  tls_key_file    = "$VS_TLS/server.key"
  tls_min_version = "tls12"
}
api_addr     = "$(vault_secure_url)"
cluster_addr = "https://$HOST:$VAULT_SECURE_CLUSTER_PORT"
ui           = false
log_level    = "warn"
EOF
}

vault_secure_start() {
  ensure_port_free vault-secure "$VAULT_SECURE_PORT"
  ensure_port_free vault-secure "$VAULT_SECURE_CLUSTER_PORT"
  vault_ensure_binary
  mkdir -p "$VS_DIR/raft"
  chmod 700 "$VS_DIR"
  vault_secure_tls
  vault_secure_config
  spawn "$VS_DIR/bao.pid" "$LOG_DIR/vault-secure.log" "$(bao_binary)" server -config="$VS_DIR/config.hcl"
}

# vault_secure_call METHOD PATH [body]: one API call with the root token (once there is one),
# sending standard input as the JSON body when asked; prints the answer. Secrets go through a
# header file and standard input, never the command line that `ps` shows.
vault_secure_call() {
  local args=(-sS --fail-with-body --max-time 10 --cacert "$VS_TLS/ca.pem" -X "$1")
  [[ -s "$VS_DIR/root-token" ]] && args+=(-H @<(printf 'X-Vault-Token: %s\n' "$(<"$VS_DIR/root-token")"))
  [[ "${3:-}" == body ]] && args+=(-H 'Content-Type: application/json' --data-binary @-)
  curl "${args[@]}" "$(vault_secure_url)/v1/$2"
}

# First start of a new storage: initialise, keeping the unseal keys (one a line) and the root
# token in the state folder, readable by their owner only.
vault_secure_initialise() {
  local answer
  say "vault-secure: initialising ($VAULT_SECURE_SHARES unseal keys, $VAULT_SECURE_THRESHOLD needed)"
  answer="$(vault_secure_call PUT sys/init body \
    <<<"{\"secret_shares\": $VAULT_SECURE_SHARES, \"secret_threshold\": $VAULT_SECURE_THRESHOLD}")" ||
    fail vault-secure "initialisation failed: $answer" "$LOG_DIR/vault-secure.log"
  (umask 077 && python3 -c '
import json, sys
answer = json.load(sys.stdin)
with open(sys.argv[1] + "/unseal-keys", "w") as keys:
    keys.write("".join(key + "\n" for key in answer["keys"]))
with open(sys.argv[1] + "/root-token", "w") as token:
    token.write(answer["root_token"])
' "$VS_DIR" <<<"$answer") || fail vault-secure "could not keep the unseal keys and root token"
}

vault_secure_unseal() {
  local key n=0
  while IFS= read -r key && ((n < VAULT_SECURE_THRESHOLD)); do
    vault_secure_call PUT sys/unseal body <<<"{\"key\": \"$key\"}" >/dev/null ||
      fail vault-secure "unsealing failed" "$LOG_DIR/vault-secure.log"
    n=$((n + 1))
  done <"$VS_DIR/unseal-keys"
}

# The policies and roles come from the installed plugins, through the product's own command.
vault_secure_apply_policies() {
  local gpubroker="$REPO_ROOT/.venv/bin/gpubroker" log="$LOG_DIR/vault-secure.log"
  [[ -x "$gpubroker" ]] || fail vault-secure "its policies are generated from the installed plugins: run scripts/setup first"
  env -u GPUBROKER_VAULT_ROLE_ID -u GPUBROKER_VAULT_SECRET_ID -u GPUBROKER_SECRETS_DIR GPUBROKER_MODE=embedded \
    GPUBROKER_VAULT_ADDR="$(vault_secure_url)" GPUBROKER_VAULT_CA_CERT="$VS_TLS/ca.pem" \
    GPUBROKER_VAULT_TOKEN="$(cat "$VS_DIR/root-token")" \
    "$gpubroker" vault apply --approle --prune --bound-cidr "$HOST/32" >>"$log" 2>&1 ||
    fail vault-secure "gpubroker vault apply failed" "$log"
}

vault_secure_wait() {
  local log="$LOG_DIR/vault-secure.log" health
  wait_until vault-secure "$log" vault_secure_pid vault_secure_listening
  health="$(vault_secure_health)"
  if [[ "$health" == 501 ]]; then
    [[ ! -s "$VS_DIR/unseal-keys" ]] ||
      fail vault-secure "storage is new but unseal keys exist from an earlier one: scripts/services down vault-secure"
    vault_secure_initialise
    health=503
  fi
  if [[ "$health" == 503 ]]; then
    [[ -s "$VS_DIR/unseal-keys" ]] ||
      fail vault-secure "sealed, and no unseal keys in $VS_DIR: scripts/services down vault-secure starts it anew"
    vault_secure_unseal
  fi
  wait_until vault-secure "$log" vault_secure_pid vault_secure_active
  vault_secure_apply_policies
}

vault_secure_stop() { stop_pid vault-secure "$(vault_secure_pid)" "bao server -config=$VS_DIR/config.hcl" 10; }

# The CA and the server certificate are kept, so the CA file tests trust stays the same; the
# storage goes, and with it the keys and token that opened it.
vault_secure_wipe() {
  rm -rf "$VS_DIR/raft" "$VS_DIR/unseal-keys" "$VS_DIR/root-token" "$VS_DIR/bao.pid" "$VS_DIR/config.hcl"
}
