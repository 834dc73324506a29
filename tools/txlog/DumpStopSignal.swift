// How `txlog dump --follow` stops cleanly: SIGINT or SIGTERM sets a flag that the dump checks between
// records and polls, so it ends after a whole record, flushes its output (and prints `--stats`) and exits 0.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by the signal handler; read by the dump. A lock-free atomic store is async-signal-safe.
private let stopRequested = Atomic<Bool>(false)

struct DumpStopSignal {
    /// Installs the handlers. A second signal (the dump stuck in a system call, say) has the default action
    /// and ends the process at once: the handler restores it.
    static func install() -> DumpStopSignal {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                stopRequested.store(true, ordering: .relaxed)
                signal(s, SIG_DFL)
            }
        }
        return DumpStopSignal()
    }

    var requested: Bool { stopRequested.load(ordering: .relaxed) }

    /// Sleeps `seconds`, or less when a stop is requested: the signal interrupts `nanosleep` (EINTR).
    func sleep(seconds: Double) {
        let nanos = Int(seconds * 1e9)
        var request = timespec(tv_sec: nanos / 1_000_000_000, tv_nsec: nanos % 1_000_000_000)
        var remaining = timespec()
        while !requested, nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }
}
