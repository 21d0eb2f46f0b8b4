# Redis: a daemon with no persistence. Sourced by scripts/services.

service redis redis default
readonly REDIS_PORT="${GPUBROKER_REDIS_PORT:-16379}"

redis_init() { REDIS_DIR="$STATE_DIR/redis"; }
redis_packages() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null || echo redis-server; }
redis_address() { echo "redis://$HOST:$REDIS_PORT/0"; }
redis_env() { echo "export GPUBROKER_REDIS_URL=redis://$HOST:$REDIS_PORT/0"; }

redis_pidfile() { echo "$REDIS_DIR/redis.pid"; }
redis_pid() { read_pidfile "$(redis_pidfile)"; }
redis_ping() { [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
redis_alive() { pid_matches "$(redis_pid)" redis-server; }
redis_running() { redis_alive && redis_ping; }

redis_start() {
  mkdir -p "$REDIS_DIR"
  rm -f "$(redis_pidfile)"
  ensure_port_free redis "$REDIS_PORT"
  redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes \
    --pidfile "$(redis_pidfile)" --logfile "$LOG_DIR/redis.log" --dir "$REDIS_DIR" \
    --save "" --appendonly no >>"$LOG_DIR/redis.log" 2>&1 9>&- ||
    fail redis "redis-server failed to start" "$LOG_DIR/redis.log"
}

redis_wait() { wait_until redis "$LOG_DIR/redis.log" redis_pid redis_ping; }

redis_stop() { stop_pid redis "$(redis_pid)" redis-server 10; }

redis_wipe() { rm -rf "$REDIS_DIR"; }
