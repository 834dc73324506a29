// SIGKILL for a child process at a chosen moment, sent from a thread of its own. A `Task.sleep` before the
// kill needs a thread of the cooperative pool to resume on, and other tests can hold all of them (the pool
// has one per CPU): under `make test-long` on a 2-core machine, the concurrent power-loss sweep and the
// 4 GiB container test did, and a `CrashTests` kill meant for 378 ms came more than 600 s late, after the
// `txlog stress run` it was for had finished by itself.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Sends SIGKILL to a process after a delay, from a new thread, so the kill comes on time however busy
/// the cooperative pool is. Created with the delay already running; ``wait()`` says whether it killed.
public final class KillTimer: @unchecked Sendable {
    // `killed` is written by the timer's thread before `done` is signalled, and read only after.
    private let done = DispatchSemaphore(value: 0)
    private var killed = false

    /// Starts the timer: after `milliseconds`, SIGKILL to `process` if it is still running.
    public init(_ process: Process, afterMilliseconds milliseconds: Int) {
        let thread = Thread { [self] in
            usleep(useconds_t(max(0, milliseconds)) * 1000)
            if process.isRunning { killed = kill(process.processIdentifier, SIGKILL) == 0 }
            done.signal()
        }
        thread.start()
    }

    /// Waits for the timer (on a thread of its own) and returns whether the process was still running
    /// when it fired, and so was sent SIGKILL.
    public func wait() async -> Bool {
        await onOwnThread { () -> Bool in
            self.done.wait()
            return self.killed
        }
    }
}
