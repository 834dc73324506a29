// How `txlog dump --follow` stops cleanly: SIGINT or SIGTERM sets a flag that the dump checks between
// records and polls, so it ends after a whole record, flushes its output (and prints `--stats`) and exits 0.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by the signal handler; read by the dump. A lock-free atomic store is async-signal-safe.
private let stopRequested = Atomic<Bool>(false)
/// The write end of the pipe the handler writes a byte to, waking the dump's wait between reads (-1: none).
private let wakeWriteFD = Atomic<Int32>(-1)

struct DumpStopSignal {
    /// The pipe's read end; readable once a stop was asked for.
    private let wakeReadFD: Int32

    /// Installs the handlers. A second signal (the dump stuck in a system call, say) has the default action
    /// and ends the process at once: the handler restores it.
    static func install() -> DumpStopSignal {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            // Non-blocking: a handler never waits on a full pipe. Close-on-exec: no child inherits it.
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            wakeWriteFD.store(fds[1], ordering: .relaxed)
        }
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                let saved = errno
                stopRequested.store(true, ordering: .relaxed)
                var byte: UInt8 = 1
                let fd = wakeWriteFD.load(ordering: .relaxed)
                if fd >= 0 { _ = write(fd, &byte, 1) }
                signal(s, SIG_DFL)
                errno = saved
            }
        }
        return DumpStopSignal(wakeReadFD: fds[0])
    }

    var requested: Bool { stopRequested.load(ordering: .relaxed) }

    /// Sleeps `seconds`, or less when a stop is requested. The wait is on the pipe the handler writes to: a
    /// signal that lands after the last check of the flag but before the wait starts (which interrupts no
    /// system call) still ends the wait at once. `nanosleep` waited out the whole interval then.
    func sleep(seconds: Double) {
        let nanos = Int(seconds * 1e9)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let deadline = now.tv_sec * 1_000_000_000 + now.tv_nsec + nanos
        while !requested {
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = deadline - (now.tv_sec * 1_000_000_000 + now.tv_nsec)
            if left <= 0 { return }
            guard wakeReadFD >= 0 else {
                var timeout = timespec(tv_sec: left / 1_000_000_000, tv_nsec: left % 1_000_000_000)
                nanosleep(&timeout, nil)
                continue
            }
            var wake = pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0)
            if poll(&wake, 1, Int32(min((left + 999_999) / 1_000_000, Int(Int32.max)))) > 0 { return }
        }
    }
}
