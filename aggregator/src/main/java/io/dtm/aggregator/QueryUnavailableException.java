package io.dtm.aggregator;

/** A query cannot be answered right now (rebalancing, owner unreachable); asking again later may succeed. HTTP 503. */
public final class QueryUnavailableException extends RuntimeException {

    public QueryUnavailableException(String message) {
        super(message);
    }

    public QueryUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
