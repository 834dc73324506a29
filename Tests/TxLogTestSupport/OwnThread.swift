// Long synchronous test work (a power-loss sweep runs the workload hundreds of times) on a thread of its
// own. Swift Testing runs every test on the cooperative pool, which has one thread per CPU: two such
// sweeps on a 2-CPU machine held both threads for a minute or more, and the async tests queued behind
// them hit their time limits without having run. On its own thread the sweep shares the CPUs with them.

import Foundation

/// Runs `body` on a new thread and returns (or throws) what it did. Record issues (`#expect`) after it
/// returns, in the test's own context: a thread of its own has no current test to attribute them to.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// ``onOwnThread(_:)`` for work that does not throw.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// A task executor that runs every job on a new thread. A test whose task must block inside the code
/// under test (a handler that waits, an append held by a closed write gate) runs that task with this
/// preference, `Task(executorPreference: OwnThreadExecutor()) { … }`, so the wait holds no thread of the
/// cooperative pool that other tests, or this test's own waiting, need.
public final class OwnThreadExecutor: TaskExecutor {
    public init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        let thread = Thread { job.runSynchronously(on: executor) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
