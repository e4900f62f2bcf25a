package io.dtm.cli;

import io.dtm.schemas.ClientProperties;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryClients;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.CommonClientConfigs;
import picocli.CommandLine.Option;

/** Where the pipeline's cluster and schema registry are, and any client security settings (SASL/TLS). */
final class ConnectionMixin {

    @Option(names = "--bootstrap-servers", required = true, description = "Kafka bootstrap servers, host:port[,host:port].")
    String bootstrapServers;

    @Option(names = "--registry-url", required = true, description = "Schema Registry URL (Confluent REST API).")
    String registryUrl;

    @Option(names = "--client-config", description = "A .properties file of extra Kafka client settings (SASL, TLS, ...).")
    Path clientConfig;

    Map<String, Object> clientProps() {
        Map<String, Object> base = new HashMap<>();
        base.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        return ClientProperties.with(base, ClientProperties.load(clientConfig));
    }

    SchemaRegistryClient registry() {
        return SchemaRegistryClients.connect(registryUrl);
    }
}
