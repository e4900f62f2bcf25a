package io.dtm.cli;

import io.dtm.schemas.ClientProperties;
import io.dtm.schemas.registry.RegistryClientSettings;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryClients;
import java.nio.file.Path;
import java.util.Map;
import org.apache.kafka.clients.CommonClientConfigs;
import picocli.CommandLine.Option;

/** Where the pipeline's cluster and schema registry are, and any client security settings (SASL/TLS). */
final class ConnectionMixin {

    @Option(names = "--bootstrap-servers", defaultValue = "${env:DTM_BOOTSTRAP_SERVERS}",
            description = "Kafka bootstrap servers, host:port[,host:port] (default: env DTM_BOOTSTRAP_SERVERS).")
    String bootstrapServers;

    @Option(names = "--registry-url", defaultValue = "${env:DTM_REGISTRY_URL}",
            description = "Schema Registry URL, Confluent REST API (default: env DTM_REGISTRY_URL).")
    String registryUrl;

    @Option(names = "--client-config", defaultValue = "${env:DTM_CLIENT_CONFIG}",
            description = "A .properties file of extra client settings: Kafka's (SASL, TLS, ...) and the schema "
                    + "registry's (basic.auth.user.info, schema.registry.ssl.truststore.*) (default: env DTM_CLIENT_CONFIG).")
    Path clientConfig;

    /**
     * Kafka client settings: the file's, without the registry's, with --bootstrap-servers taking precedence over a
     * bootstrap.servers in it.
     */
    Map<String, Object> clientProps() {
        Map<String, Object> props = RegistryClientSettings.withoutRegistrySettings(ClientProperties.load(clientConfig));
        props.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
        return props;
    }

    String bootstrapServers() {
        if (bootstrapServers == null || bootstrapServers.isBlank()) {
            throw new IllegalArgumentException("no Kafka cluster given: pass --bootstrap-servers or set DTM_BOOTSTRAP_SERVERS"
                    + " (./dtm broker starts one locally)");
        }
        return bootstrapServers;
    }

    SchemaRegistryClient registry() {
        if (registryUrl == null || registryUrl.isBlank()) {
            throw new IllegalArgumentException("no schema registry given: pass --registry-url or set DTM_REGISTRY_URL"
                    + " (./dtm broker starts one locally)");
        }
        return SchemaRegistryClients.connect(registryUrl,
                RegistryClientSettings.from(ClientProperties.load(clientConfig)));
    }
}
