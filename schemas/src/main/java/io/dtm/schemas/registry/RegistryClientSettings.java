package io.dtm.schemas.registry;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.HashMap;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * How the registry client authenticates and whom it trusts, read from the same client-config file as the Kafka
 * settings, under Confluent's property names, so one file configures a service for a secured cluster and registry:
 * <ul>
 *   <li>{@code basic.auth.user.info=USER:PASSWORD} (or {@code schema.registry.basic.auth.user.info}), with
 *   {@code basic.auth.credentials.source} absent or {@code USER_INFO}: HTTP basic authentication;</li>
 *   <li>{@code schema.registry.ssl.truststore.location}, {@code .password}, {@code .type} (default: the JVM's
 *   default keystore type): the CAs an {@code https://} registry's certificate is checked against, instead of the
 *   JVM's.</li>
 * </ul>
 *
 * @param userInfo   {@code USER:PASSWORD}, or null for no authentication
 * @param sslContext the TLS context, or null for the JVM's default trust
 */
public record RegistryClientSettings(String userInfo, SSLContext sslContext) {

    public static final RegistryClientSettings NONE = new RegistryClientSettings(null, null);

    static final String CREDENTIALS_SOURCE = "basic.auth.credentials.source";
    static final String USER_INFO = "basic.auth.user.info";
    static final String PREFIX = "schema.registry.";
    static final String TRUSTSTORE_LOCATION = PREFIX + "ssl.truststore.location";
    static final String TRUSTSTORE_PASSWORD = PREFIX + "ssl.truststore.password";
    static final String TRUSTSTORE_TYPE = PREFIX + "ssl.truststore.type";

    public RegistryClientSettings {
        if (userInfo != null && userInfo.indexOf(':') < 1) {
            throw new IllegalArgumentException(USER_INFO + " must be USER:PASSWORD");
        }
    }

    /**
     * The registry settings among {@code props} (the rest is ignored).
     *
     * @throws IllegalArgumentException naming the property that is wrong, or the truststore that cannot be read
     */
    public static RegistryClientSettings from(Map<String, ?> props) {
        String source = text(props, CREDENTIALS_SOURCE);
        if (source != null && !source.equals("USER_INFO")) {
            throw new IllegalArgumentException(CREDENTIALS_SOURCE + " " + source
                    + " is not supported; use USER_INFO with " + USER_INFO);
        }
        String userInfo = text(props, USER_INFO);
        if (userInfo == null) {
            userInfo = text(props, PREFIX + USER_INFO);
        }
        String truststore = text(props, TRUSTSTORE_LOCATION);
        SSLContext ssl = truststore == null ? null : sslContext(Path.of(truststore), text(props, TRUSTSTORE_PASSWORD),
                text(props, TRUSTSTORE_TYPE));
        return new RegistryClientSettings(userInfo, ssl);
    }

    /**
     * {@code props} without the registry's settings: they mean nothing to Kafka clients, which would log each as an
     * unknown configuration, and a password has no business in their logged configuration.
     */
    public static Map<String, Object> withoutRegistrySettings(Map<String, Object> props) {
        Map<String, Object> kafka = new HashMap<>(props);
        kafka.keySet().removeIf(k -> k.startsWith(PREFIX) || k.startsWith("basic.auth."));
        return kafka;
    }

    private static SSLContext sslContext(Path location, String password, String type) {
        try (InputStream in = Files.newInputStream(location)) {
            KeyStore store = KeyStore.getInstance(type == null ? KeyStore.getDefaultType() : type);
            store.load(in, password == null ? null : password.toCharArray());
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalArgumentException("cannot read the registry truststore " + location + " ("
                    + TRUSTSTORE_LOCATION + "): " + e.getMessage(), e);
        }
    }

    private static String text(Map<String, ?> props, String key) {
        Object value = props.get(key);
        return value == null || value.toString().isBlank() ? null : value.toString().trim();
    }

    /** Never prints the password. */
    @Override
    public String toString() {
        return "RegistryClientSettings[basic auth " + (userInfo == null ? "off" : "as " + userInfo.substring(0,
                userInfo.indexOf(':'))) + ", " + (sslContext == null ? "JVM trust" : "own truststore") + "]";
    }
}
