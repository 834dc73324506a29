// Keeping the async commit path off Swift's cooperative pool when an append may wait.
//
// An async commit runs its synchronous steps (delivering a phase's notifications, whose handlers append
// to the RMs' streams; appending the TM's own records) on the task's thread, a cooperative-pool thread.
// A log append normally only copies the record, but it waits under back-pressure or when the log is
// full (it flushes, grows the log, calls tail-pinned handlers). Blocked there, a few commits would stall
// every task of the process on a small machine. So each step first reads the log's lock-free hint
// (`LogStore.appendMayWait`, set with a margin before either case) and, when it is set, runs on a
// thread of `OffPoolThreads` (reused, never queued behind a blocked step) while the task is suspended;
// the fast path pays one atomic load per step.

import LogStore
import Synchronization

/// The step handed to the other thread, and its result. The step is dropped there before the task is
/// resumed: `withoutActuallyEscaping` checks that nothing holds it once the task goes on.
private final class OffPoolStep<T, E: Error>: OffPoolJob, @unchecked Sendable {
    var body: (() throws(E) -> T)?
    var result: Result<T, E>?
    var continuation: CheckedContinuation<Void, Never>?

    init(_ body: @escaping () throws(E) -> T) { self.body = body }

    func run() {
        if let body {
            self.body = nil
            result = Result { () throws(E) -> T in try body() }
        }
    }

    func finish() {
        continuation?.resume()
        continuation = nil
    }
}

/// Counters of a transaction manager's async commit paths, for benchmarks and monitoring.
public struct TransactionManagerStatistics: Sendable, Equatable {
    /// Steps of async commits (``Transaction/commit()``, a superior's prepare and commit, `resolve`)
    /// that ran on a thread of their own because the log's `appendMayWait` hint was set when the step
    /// began (docs/TRANSACTIONS.md, "Commits and Swift's cooperative pool"). A commit has two to four
    /// such steps; the rest ran inline on the task's thread. Counted since the TM was opened; wraps.
    public var offPoolSteps: UInt64 = 0
}

extension TransactionManager {
    /// What this TM's async commit paths did since it was opened (one atomic load).
    public var statistics: TransactionManagerStatistics {
        TransactionManagerStatistics(offPoolSteps: offPoolSteps.load(ordering: .relaxed))
    }

    /// Runs `body` now, or, when the TM's log says an append may wait, on a thread of `offPoolThreads`
    /// (not a cooperative-pool thread), suspending the task until it is done. For the synchronous steps
    /// of the async commit paths that may append: the TM's records and the notifications whose handlers
    /// append (RMs' streams are on the TM's log).
    func offPoolIfAppendMayWait<T, E: Error>(_ body: () throws(E) -> T) async throws(E) -> T {
        guard let log, log.appendMayWait else { return try body() }
        offPoolSteps.wrappingAdd(1, ordering: .relaxed)
        let threads = offPoolThreads
        let result: Result<T, E>? = await withoutActuallyEscaping(body) { escapable in
            let step = OffPoolStep(escapable)
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                step.continuation = c
                // No thread to be had (the system's limit): the step runs here, as it did before hops.
                if !threads.run(step) {
                    step.run()
                    step.finish()
                }
            }
            return step.result
        }
        // The step always ran, so `result` is set; were it not, the body had not run, and runs here.
        guard let result else { return try body() }
        return try result.get()
    }
}
