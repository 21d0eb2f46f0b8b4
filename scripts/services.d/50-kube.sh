# A Kubernetes control plane for server-side dry-runs of k8s/: etcd and kube-apiserver, plus the
# kustomize that renders the manifests, all three built from their Go modules. No kubelet, no
# controllers, no container runtime: objects are validated and admitted, never run.
# Optional: started only when named (`scripts/services up kube`). Sourced by scripts/services.

service kube kube optional
readonly KUBE_PORT="${GPUBROKER_KUBE_PORT:-16443}"
readonly ETCD_PORT="${GPUBROKER_ETCD_PORT:-12379}"
readonly ETCD_PEER_PORT="${GPUBROKER_ETCD_PEER_PORT:-12380}"
# The wrapper modules that pin each tool's version (scripts/kube/<tool>/go.mod, go.sum).
readonly KUBE_MODULES="$REPO_ROOT/scripts/kube"
readonly KUBE_TOOLS=(kustomize etcd apiserver)

kube_init() {
  KUBE_DIR="$STATE_DIR/kube"
  KUBE_BIN="$KUBE_DIR/bin"
  KUBE_PKI="$KUBE_DIR/pki"
  ETCD_DATA="$KUBE_DIR/etcd"
}
kube_download() { kube_build_tools; }
kube_address() { echo "https://$HOST:$KUBE_PORT"; }
# The tools are printed once built, the API server only while it runs, so that tests never
# find an address with nothing behind it.
kube_env() {
  local tool
  tool="$(kube_tool kustomize)"
  [[ -x "$tool" ]] && echo "export GPUBROKER_KUSTOMIZE=$tool"
  if kube_running; then
    echo "export GPUBROKER_KUBE_SERVER=$(kube_address)"
    echo "export GPUBROKER_KUBE_TOKEN=$(kube_token)"
    echo "export GPUBROKER_KUBE_CA=$KUBE_PKI/apiserver.crt"
  fi
  return 0
}

# The main package each wrapper module builds, and the version it pins (from its go.mod).
kube_package() {
  case "$1" in
    kustomize) echo sigs.k8s.io/kustomize/kustomize/v5 ;;
    etcd) echo go.etcd.io/etcd/server/v3 ;;
    apiserver) echo k8s.io/kubernetes/cmd/kube-apiserver ;;
  esac
}
kube_version() {
  local module
  module="$(kube_package "$1")"
  [[ "$1" == apiserver ]] && module=k8s.io/kubernetes
  awk -v m="$module" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' \
    "$KUBE_MODULES/$1/go.mod"
}
# Built binaries are kept per tool and version: bin/<tool>-<version>, rebuilt only when the
# wrapper module's go.mod or go.sum changes (a stamp beside the binary holds their checksum).
kube_tool() { echo "$KUBE_BIN/$1-$(kube_version "$1")"; }
kube_module_sum() { cat "$KUBE_MODULES/$1/go.mod" "$KUBE_MODULES/$1/go.sum" | sha256sum | cut -d' ' -f1; }
kube_tool_built() {
  local bin
  bin="$(kube_tool "$1")"
  [[ -x "$bin" && -f "$bin.sha256" && "$(cat "$bin.sha256")" == "$(kube_module_sum "$1")" ]]
}

# Builds whatever is missing, kustomize first (the tests that only render need nothing else).
# The build takes its own lock, not the state folder's: `scripts/services prepare kube` can run
# in the background beside tests that stop and start other services, and a later `up kube`
# waits here for it to finish.
kube_build_tools() {
  local tool log="$LOG_DIR/kube-build.log" missing=()
  for tool in "${KUBE_TOOLS[@]}"; do kube_tool_built "$tool" || missing+=("$tool"); done
  ((${#missing[@]} == 0)) && return 0
  command -v go >/dev/null || fail kube "go not found (needed once to build ${missing[*]})"
  mkdir -p "$KUBE_BIN"
  exec 8>"$KUBE_DIR/.build.lock"
  flock 8
  for tool in "${missing[@]}"; do
    kube_tool_built "$tool" && continue # built by the run we waited for
    local bin t0=$SECONDS
    bin="$(kube_tool "$tool")"
    say "kube: building $tool $(kube_version "$tool") from its Go module (one-time)"
    (cd "$KUBE_MODULES/$tool" && go build -trimpath -ldflags='-s -w' -o "$bin.tmp" "$(kube_package "$tool")") \
      >>"$log" 2>&1 || fail kube "building $tool failed" "$log"
    mv "$bin.tmp" "$bin"
    kube_module_sum "$tool" >"$bin.sha256"
    say "kube: built $tool in $((SECONDS - t0))s"
  done
  exec 8>&-
}

kube_etcd_pid() { read_pidfile "$KUBE_DIR/etcd.pid"; }
kube_apiserver_pid() { read_pidfile "$KUBE_DIR/apiserver.pid"; }
kube_pid() { kube_apiserver_pid; }
kube_alive() { pid_matches "$(kube_apiserver_pid)" "$(kube_tool apiserver)"; }
kube_ready() {
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$KUBE_PKI/apiserver.crt" \
    -H "Authorization: Bearer $(kube_token)" "$(kube_address)/readyz" 2>/dev/null)" == 200 ]]
}
kube_running() { kube_alive && kube_ready; }

# A random bearer token in system:masters, generated once and kept in the state folder.
kube_token() {
  local f="$KUBE_DIR/token"
  if [[ ! -s "$f" ]]; then
    mkdir -p "$KUBE_DIR"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$f")
  fi
  cat "$f"
}

# The service-account signing key and the token file, once; the API server makes its own
# serving certificate (for 127.0.0.1 and localhost) in the cert dir.
kube_prepare_pki() {
  mkdir -p "$KUBE_PKI"
  if [[ ! -s "$KUBE_PKI/sa.key" ]]; then
    openssl genrsa -out "$KUBE_PKI/sa.key" 2048 >>"$LOG_DIR/kube.log" 2>&1 ||
      fail kube "openssl could not make the service-account key" "$LOG_DIR/kube.log"
    openssl rsa -in "$KUBE_PKI/sa.key" -pubout -out "$KUBE_PKI/sa.pub" >>"$LOG_DIR/kube.log" 2>&1
  fi
  (umask 077 && echo "$(kube_token),gpubroker-admin,gpubroker-admin,system:masters" >"$KUBE_PKI/tokens.csv")
}

kube_start() {
  ensure_port_free kube "$KUBE_PORT"
  ensure_port_free kube "$ETCD_PORT"
  ensure_port_free kube "$ETCD_PEER_PORT"
  kube_build_tools
  kube_prepare_pki
  mkdir -p "$ETCD_DATA"
  local etcd_url="http://$HOST:$ETCD_PORT" peer_url="http://$HOST:$ETCD_PEER_PORT"
  spawn "$KUBE_DIR/etcd.pid" "$LOG_DIR/kube.log" \
    "$(kube_tool etcd)" --name gpubroker --data-dir "$ETCD_DATA" --log-level warn \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "gpubroker=$peer_url" --unsafe-no-fsync
  spawn "$KUBE_DIR/apiserver.pid" "$LOG_DIR/kube.log" \
    "$(kube_tool apiserver)" --etcd-servers "$etcd_url" \
    --bind-address "$HOST" --advertise-address "$HOST" --endpoint-reconciler-type none --secure-port "$KUBE_PORT" \
    --cert-dir "$KUBE_PKI" --token-auth-file "$KUBE_PKI/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$KUBE_PKI/sa.pub" --service-account-signing-key-file "$KUBE_PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/16 \
    --enable-priority-and-fairness=false --v=0
}

kube_wait() { wait_until kube "$LOG_DIR/kube.log" kube_apiserver_pid kube_ready; }

kube_stop() {
  stop_pid kube "$(kube_apiserver_pid)" "$(kube_tool apiserver)" 30
  stop_pid kube "$(kube_etcd_pid)" "$(kube_tool etcd)" 10
}

# The built tools, the token and the keys are kept; the stored objects are not.
kube_wipe() { rm -rf "$ETCD_DATA" "$KUBE_DIR/etcd.pid" "$KUBE_DIR/apiserver.pid"; }
