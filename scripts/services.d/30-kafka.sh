# Apache Kafka in KRaft mode (broker and controller in one JVM), jars from Maven.
# Sourced by scripts/services.

service kafka kafka default
readonly KAFKA_PORT="${GPUBROKER_KAFKA_PORT:-19092}"
readonly KAFKA_CONTROLLER_PORT="${GPUBROKER_KAFKA_CONTROLLER_PORT:-19093}"
readonly KAFKA_TEMPLATE_DIR="$REPO_ROOT/scripts/kafka"
readonly KAFKA_HEAP_OPTS="${GPUBROKER_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# Extra broker JVM flags, e.g. -XX:TieredStopAtLevel=1 (C1 only: starts ~1s faster, runs slower).
readonly KAFKA_JVM_OPTS="${GPUBROKER_KAFKA_JVM_OPTS:-}"

# The project's Kafka topics: NAME:PARTITIONS:CONFIGS (comma-separated key=value).
# This is the only place topics are listed; `up` creates missing ones and re-applies
# the configs of existing ones whenever this list changes.
readonly SEVEN_DAYS_MS=604800000
readonly KAFKA_TOPICS=(
  "gpubroker.offers:3:cleanup.policy=compact,min.compaction.lag.ms=0,segment.ms=60000"
  "gpubroker.price-updates:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.provider-events:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.webhooks:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.price-alerts:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.price-aggregates:3:cleanup.policy=compact,min.compaction.lag.ms=0,segment.ms=60000"
  "gpubroker.rental-commands:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.rental-results:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.rental-events:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.agents.actions:3:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.dlq.offers:1:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.dlq.price-updates:1:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.dlq.provider-events:1:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.dlq.webhooks:1:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.dlq.price-alerts:1:retention.ms=$SEVEN_DAYS_MS"
  "gpubroker.dlq.price-aggregates:1:retention.ms=$SEVEN_DAYS_MS"
)

kafka_init() {
  KAFKA_DIR="$STATE_DIR/kafka"
  KAFKA_LIBS="$KAFKA_DIR/libs"
  KAFKA_DATA="$KAFKA_DIR/data"
}
kafka_download() { kafka_ensure_libs && kafka_compile_topic_tool; }
kafka_address() { echo "$HOST:$KAFKA_PORT"; }
kafka_env() { echo "export GPUBROKER_KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT"; }
# Topics are re-applied when the list changed while the broker kept running.
kafka_already_running() { kafka_ensure_topics if-changed; }

kafka_pidfile() { echo "$KAFKA_DIR/kafka.pid"; }
kafka_pid() { read_pidfile "$(kafka_pidfile)"; }
kafka_port_open() { port_open "$KAFKA_PORT"; }
kafka_alive() { pid_matches "$(kafka_pid)" kafka.Kafka; }
kafka_running() { kafka_alive && kafka_port_open; }

pom_sum() { sha256sum "$KAFKA_TEMPLATE_DIR/pom.xml" | cut -d' ' -f1; }

# Broker jars from Maven (once, and again only when scripts/kafka/pom.xml changes).
kafka_ensure_libs() {
  local stamp="$KAFKA_LIBS/.pom.sha256" log="$LOG_DIR/install.log"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(pom_sum)" ]] && return 0
  command -v mvn >/dev/null || fail kafka "mvn not found (needed once to fetch the Kafka jars)"
  say "kafka: fetching broker jars with Maven (one-time)"
  rm -rf "$KAFKA_LIBS" "$KAFKA_LIBS.tmp"
  mkdir -p "$KAFKA_DIR"
  mvn -q -B -f "$KAFKA_TEMPLATE_DIR/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS.tmp" >>"$log" 2>&1 ||
    fail kafka "mvn dependency:copy-dependencies failed" "$log"
  pom_sum >"$KAFKA_LIBS.tmp/.pom.sha256"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
}

kafka_java() { # kafka_java LOG4J_CONFIG [JAVA ARGS...]
  local log4j="$1"
  shift
  java -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_TEMPLATE_DIR/$log4j" \
    -cp "$KAFKA_LIBS/*${KAFKA_EXTRA_CP:-}" "$@"
}

kafka_write_config() {
  sed -e "s|@HOST@|$HOST|g" -e "s|@BROKER_PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
    "$KAFKA_TEMPLATE_DIR/server.properties.in" >"$KAFKA_DIR/server.properties"
}

kafka_format_storage() {
  local log="$LOG_DIR/kafka.log" cluster_id
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  say "kafka: formatting storage (one-time)"
  rm -f "$KAFKA_DIR/topics.applied"
  cluster_id="$(kafka_java log4j2-tools.properties kafka.tools.StorageTool random-uuid 2>>"$log")" ||
    fail kafka "StorageTool random-uuid failed" "$log"
  kafka_java log4j2-tools.properties kafka.tools.StorageTool format --standalone \
    -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >>"$log" 2>&1 ||
    fail kafka "StorageTool format failed" "$log"
}

# Class-data sharing archive of the broker's classes: written by the JVM when a broker
# started without one exits (i.e. at the first stop), then mapped by every later start,
# which cuts broker start-up from ~5s to ~3s. It lives in libs/, so it goes with the jars.
# Tried once only: if that JVM exits without writing the archive (killed, or a JDK without
# a base CDS archive), brokers just start without it.
kafka_cds_opts() {
  local jsa="$KAFKA_LIBS/.broker.jsa"
  if [[ -s "$jsa" ]]; then
    echo "-XX:SharedArchiveFile=$jsa"
  elif [[ ! -e "$jsa.tried" ]]; then
    touch "$jsa.tried"
    echo "-XX:ArchiveClassesAtExit=$jsa -Xlog:cds=off -Xlog:cds+dynamic=off"
  fi
}

kafka_start() {
  ensure_port_free kafka "$KAFKA_PORT"
  ensure_port_free kafka "$KAFKA_CONTROLLER_PORT"
  mkdir -p "$KAFKA_DIR"
  kafka_ensure_libs
  kafka_write_config
  kafka_format_storage
  # shellcheck disable=SC2086,SC2046 # the *_OPTS are lists of JVM flags
  spawn "$(kafka_pidfile)" "$LOG_DIR/kafka.log" \
    java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS $(kafka_cds_opts) -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_TEMPLATE_DIR/log4j2-broker.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
}

# Compiled once (and again when the source changes) into the state dir.
kafka_compile_topic_tool() {
  local src="$KAFKA_TEMPLATE_DIR/EnsureTopics.java" out="$KAFKA_DIR/tools-classes" sum
  sum="$(sha256sum "$src" | cut -d' ' -f1)"
  [[ -f "$out/.sha256" && "$(cat "$out/.sha256")" == "$sum" ]] && return 0
  rm -rf "$out"
  mkdir -p "$out"
  javac -nowarn -d "$out" -cp "$KAFKA_LIBS/*" "$src" >>"$LOG_DIR/kafka.log" 2>&1 ||
    fail kafka "compiling $src failed" "$LOG_DIR/kafka.log"
  echo "$sum" >"$out/.sha256"
}

topics_sum() { printf '%s\n' "$KAFKA_PORT" "${KAFKA_TOPICS[@]}" | sha256sum | cut -d' ' -f1; }

# Topics are (re)applied when the broker was just started or the topic list changed.
kafka_ensure_topics() {
  local force="$1" stamp="$KAFKA_DIR/topics.applied" log="$LOG_DIR/kafka.log"
  if [[ "$force" != force && -f "$stamp" && "$(cat "$stamp")" == "$(topics_sum)" ]]; then
    return 0
  fi
  kafka_compile_topic_tool
  KAFKA_EXTRA_CP=":$KAFKA_DIR/tools-classes" kafka_java log4j2-tools.properties \
    -XX:TieredStopAtLevel=1 -Xshare:auto EnsureTopics "$HOST:$KAFKA_PORT" "${KAFKA_TOPICS[@]}" \
    >>"$log" 2>&1 || fail kafka "creating topics failed" "$log"
  topics_sum >"$stamp"
}

kafka_wait() {
  wait_until kafka "$LOG_DIR/kafka.log" kafka_pid kafka_port_open
  kafka_ensure_topics force
}

kafka_stop() { stop_pid kafka "$(kafka_pid)" kafka.Kafka 30; }

kafka_wipe() { rm -rf "$KAFKA_DATA" "$KAFKA_DIR/topics.applied" "$KAFKA_DIR/server.properties"; }
