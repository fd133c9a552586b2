import Foundation

/// Set by SIGINT/SIGTERM; long commands checkpoint and stop when they see it.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// The C signal handler: only sets the flag (async-signal-safe).
func handleStopSignal(_: Int32) { stopRequested = 1 }

/// Routes SIGINT and SIGTERM to `handleStopSignal`.
func installStopHandlers() {
    signal(SIGINT, handleStopSignal)
    signal(SIGTERM, handleStopSignal)
}
