package io.dtm.schemas;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.junit.jupiter.api.Test;

class TopicsTest {

    @Test
    void createTopicsRefusesNonsense() {
        Map<String, Object> props = Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:1");
        assertThrows(IllegalArgumentException.class, () -> Topics.create(props, 0, (short) 1));
        assertThrows(IllegalArgumentException.class, () -> Topics.create(props, 4, (short) 0));
    }
}
