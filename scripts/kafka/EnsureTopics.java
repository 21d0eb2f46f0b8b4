import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Creates the project's Kafka topics in one JVM, idempotently.
 *
 * Usage: EnsureTopics BOOTSTRAP SPEC...
 * where SPEC is NAME:PARTITIONS[:key=value,key=value...].
 *
 * Missing topics are created (replication factor 1) with their configs.
 * Existing topics get the listed configs set again (a no-op when unchanged);
 * a partition count that differs from the spec is only reported.
 * Finally it waits until every partition of the listed topics has a leader.
 *
 * Run by scripts/services; the topic list lives there (KAFKA_TOPICS).
 */
public final class EnsureTopics {

    private record Spec(String name, int partitions, Map<String, String> configs) {
        static Spec parse(String s) {
            String[] parts = s.split(":", 3);
            if (parts.length < 2) {
                throw new IllegalArgumentException("bad topic spec (want NAME:PARTITIONS[:k=v,...]): " + s);
            }
            Map<String, String> configs = new LinkedHashMap<>();
            if (parts.length == 3 && !parts[2].isBlank()) {
                for (String kv : parts[2].split(",")) {
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        throw new IllegalArgumentException("bad config '" + kv + "' in topic spec: " + s);
                    }
                    configs.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
                }
            }
            return new Spec(parts[0], Integer.parseInt(parts[1]), configs);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: EnsureTopics BOOTSTRAP NAME:PARTITIONS[:k=v,...]...");
            System.exit(2);
        }
        List<Spec> specs = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            specs.add(Spec.parse(args[i]));
        }

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "gpubroker-ensure-topics");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");

        try (Admin admin = Admin.create(props)) {
            Set<String> existing = admin.listTopics(new ListTopicsOptions().listInternal(false)).names().get();

            List<NewTopic> toCreate = new ArrayList<>();
            Map<ConfigResource, Collection<AlterConfigOp>> toAlter = new HashMap<>();
            for (Spec spec : specs) {
                if (existing.contains(spec.name())) {
                    if (!spec.configs().isEmpty()) {
                        List<AlterConfigOp> ops = new ArrayList<>();
                        spec.configs().forEach((k, v) ->
                                ops.add(new AlterConfigOp(new ConfigEntry(k, v), AlterConfigOp.OpType.SET)));
                        toAlter.put(new ConfigResource(ConfigResource.Type.TOPIC, spec.name()), ops);
                    }
                } else {
                    toCreate.add(new NewTopic(spec.name(), spec.partitions(), (short) 1).configs(spec.configs()));
                }
            }

            int created = 0;
            if (!toCreate.isEmpty()) {
                var result = admin.createTopics(toCreate, new CreateTopicsOptions());
                for (var e : result.values().entrySet()) {
                    try {
                        e.getValue().get();
                        created++;
                    } catch (ExecutionException ex) {
                        if (!(ex.getCause() instanceof TopicExistsException)) {
                            throw new RuntimeException("creating topic " + e.getKey() + ": " + ex.getCause(), ex);
                        }
                    }
                }
            }
            if (!toAlter.isEmpty()) {
                admin.incrementalAlterConfigs(toAlter).all().get();
            }

            // Wait for leaders, and report partition counts that differ from the spec.
            List<String> names = specs.stream().map(Spec::name).toList();
            long deadline = System.currentTimeMillis() + 60_000;
            while (true) {
                Map<String, TopicDescription> descriptions = admin.describeTopics(names).allTopicNames().get();
                boolean ready = descriptions.values().stream()
                        .flatMap(d -> d.partitions().stream())
                        .map(TopicPartitionInfo::leader)
                        .allMatch(leader -> leader != null && !leader.isEmpty());
                if (ready) {
                    for (Spec spec : specs) {
                        int actual = descriptions.get(spec.name()).partitions().size();
                        if (actual != spec.partitions()) {
                            System.err.printf("warning: topic %s has %d partitions, spec says %d%n",
                                    spec.name(), actual, spec.partitions());
                        }
                    }
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new RuntimeException("timed out waiting for partition leaders");
                }
                Thread.sleep(100);
            }
            System.out.printf("topics: %d created, %d already existed%n", created, specs.size() - created);
        }
    }
}
