package io.dtm.cli;

import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import io.dtm.worker.TrialWorker;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The Kafka ACLs of the pipeline's three principals, least privilege: only producers ({@code sweep start}) and the
 * aggregator (later rounds) write {@code dtm.sweeps}/{@code dtm.trials} (the aggregator only the trials), only workers
 * write {@code dtm.divergences}/{@code dtm.baselines}, and each reads only what it consumes. A principal that is
 * nobody's can do nothing on the pipeline's topics.
 *
 * @param producer      the principal of {@code dtm sweep start}, e.g. {@code User:sweeper}
 * @param worker        the principal every worker authenticates as
 * @param aggregator    the principal of the aggregator instances
 * @param workerGroup   the workers' consumer group ({@code dtm worker --group})
 * @param applicationId the aggregator's Kafka Streams application id (prefix of its internal topics, group and
 *                      transactional ids)
 */
record PipelineAcls(String producer, String worker, String aggregator, String workerGroup, String applicationId) {

    private static final Pattern PRINCIPAL = Pattern.compile("[A-Za-z]+:\\S+");

    PipelineAcls {
        for (String principal : List.of(producer, worker, aggregator)) {
            if (principal == null || !PRINCIPAL.matcher(principal).matches()) {
                throw new IllegalArgumentException("a principal looks like User:name, got '" + principal + "'");
            }
        }
        if (workerGroup == null || workerGroup.isBlank() || applicationId == null || applicationId.isBlank()) {
            throw new IllegalArgumentException("the worker group and the aggregator's application id are required");
        }
    }

    List<AclBinding> bindings() {
        List<AclBinding> acls = new ArrayList<>();
        // sweep start: one transaction writes a sweep and its round-0 trials
        write(acls, producer, Topics.SWEEPS, Topics.TRIALS);
        transactionalIds(acls, producer, SweepPublisher.transactionalId("")); // the prefix of every sweep's id

        // workers: consume trials, share baselines, write results and dead letters in their transactions
        read(acls, worker, Topics.TRIALS, Topics.BASELINES);
        write(acls, worker, Topics.DIVERGENCES, Topics.BASELINES, Topics.DEAD_LETTERS);
        group(acls, worker, workerGroup);
        transactionalIds(acls, worker, TrialWorker.TRANSACTIONAL_ID_PREFIX);

        // the aggregator: Kafka Streams over sweeps, results and dead letters; owns its internal topics
        read(acls, aggregator, Topics.SWEEPS, Topics.DIVERGENCES, Topics.DEAD_LETTERS);
        write(acls, aggregator, Topics.RANKINGS, Topics.SCHEDULE, Topics.TRIALS, Topics.DEAD_LETTERS);
        acls.add(allow(aggregator, new ResourcePattern(ResourceType.TOPIC, applicationId + "-", PatternType.PREFIXED),
                AclOperation.ALL));
        group(acls, aggregator, applicationId);
        transactionalIds(acls, aggregator, applicationId + "-");
        return acls;
    }

    private static void read(List<AclBinding> acls, String principal, Topic<?, ?>... topics) {
        for (Topic<?, ?> topic : topics) {
            acls.add(allow(principal, literal(ResourceType.TOPIC, topic.name()), AclOperation.READ));
            acls.add(allow(principal, literal(ResourceType.TOPIC, topic.name()), AclOperation.DESCRIBE));
        }
    }

    private static void write(List<AclBinding> acls, String principal, Topic<?, ?>... topics) {
        for (Topic<?, ?> topic : topics) {
            acls.add(allow(principal, literal(ResourceType.TOPIC, topic.name()), AclOperation.WRITE));
            acls.add(allow(principal, literal(ResourceType.TOPIC, topic.name()), AclOperation.DESCRIBE));
        }
    }

    private static void group(List<AclBinding> acls, String principal, String group) {
        acls.add(allow(principal, literal(ResourceType.GROUP, group), AclOperation.READ));
    }

    private static void transactionalIds(List<AclBinding> acls, String principal, String prefix) {
        ResourcePattern ids = new ResourcePattern(ResourceType.TRANSACTIONAL_ID, prefix, PatternType.PREFIXED);
        acls.add(allow(principal, ids, AclOperation.WRITE));
        acls.add(allow(principal, ids, AclOperation.DESCRIBE));
    }

    private static ResourcePattern literal(ResourceType type, String name) {
        return new ResourcePattern(type, name, PatternType.LITERAL);
    }

    private static AclBinding allow(String principal, ResourcePattern resource, AclOperation operation) {
        return new AclBinding(resource, new AccessControlEntry(principal, "*", operation, AclPermissionType.ALLOW));
    }
}
