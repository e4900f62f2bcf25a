package io.dtm.cli;

import io.dtm.engine.DivergenceEngine;
import java.io.PrintStream;

/** A one-line terminal progress bar, redrawn in place; a new line starts when the phase changes. */
final class ProgressBar implements DivergenceEngine.Progress {

    private static final int WIDTH = 30;
    private final PrintStream out;
    private String phase = "";
    private long lastDraw;

    ProgressBar(PrintStream out) {
        this.out = out;
    }

    @Override
    public synchronized void update(String newPhase, int done, int total) {
        long now = System.nanoTime();
        boolean finished = done >= total;
        if (!newPhase.equals(phase)) {
            if (!phase.isEmpty()) {
                out.println();
            }
            phase = newPhase;
        } else if (!finished && now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        int filled = total == 0 ? WIDTH : (int) ((long) WIDTH * done / total);
        out.printf("\r%-16s [%s%s] %d/%d", phase, "#".repeat(filled), ".".repeat(WIDTH - filled), done, total);
        if (finished) {
            out.println();
            phase = "";
        }
        out.flush();
    }
}
