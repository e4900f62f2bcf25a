package io.dtm.cli;

/**
 * A command that sets JVM-wide properties read only once, such as log levels (read when the first logger is made) or
 * PyTorch's thread pool: the launcher applies them after parsing, before anything else runs.
 */
interface JvmSetup {
    void setUpJvm();
}
