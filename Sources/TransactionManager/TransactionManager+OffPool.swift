// Keeping the async commit path off Swift's cooperative pool when an append may wait.
//
// An async commit runs its synchronous steps (delivering a phase's notifications, whose handlers append
// to the RMs' streams; appending the TM's own records) on the task's thread, a cooperative-pool thread.
// A log append normally only copies the record, but it waits under back-pressure or when the log is
// full (it flushes, grows the log, calls tail-pinned handlers). Blocked there, a few commits would stall
// every task of the process on a small machine. So each step first reads the log's lock-free hint
// (`LogStore.appendMayWait`, set with a margin before either case) and, when it is set, runs on a
// thread of its own while the task is suspended; the fast path pays one atomic load per step.

import Dispatch
import LogStore

/// The step handed to the other thread, and its result. The step is dropped there before the task is
/// resumed: `withoutActuallyEscaping` checks that nothing holds it once the task goes on.
private final class OffPoolStep<T, E: Error>: @unchecked Sendable {
    var body: (() throws(E) -> T)?
    var result: Result<T, E>?

    init(_ body: @escaping () throws(E) -> T) { self.body = body }
}

extension TransactionManager {
    /// Runs `body` now, or, when the TM's log says an append may wait, on a dedicated thread (a new
    /// serial dispatch queue, which does not take a cooperative-pool thread), suspending the task until
    /// it is done. For the synchronous steps of the async commit paths that may append: the TM's
    /// records and the notifications whose handlers append (RMs' streams are on the TM's log).
    func offPoolIfAppendMayWait<T, E: Error>(_ body: () throws(E) -> T) async throws(E) -> T {
        guard let log, log.appendMayWait else { return try body() }
        let result: Result<T, E> = await withoutActuallyEscaping(body) { escapable in
            let step = OffPoolStep(escapable)
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                DispatchQueue(label: "txlog.tm.append-off-pool").async {
                    step.result = Result { () throws(E) -> T in try step.body!() }
                    step.body = nil
                    c.resume()
                }
            }
            return step.result!
        }
        return try result.get()
    }
}
