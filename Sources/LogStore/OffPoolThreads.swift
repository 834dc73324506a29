// Reusable threads for work that must not run on Swift's cooperative pool because it may block: an
// async commit's step whose append may wait for log room (TransactionManager+OffPool.swift).
//
// A job runs at once: on a parked thread if there is one, else on a new thread. It never queues behind
// another job, so jobs blocked on anything (the log's writer, a full log, a handler's lock, another log
// entirely) hold up nothing else; that is the liveness a new dispatch queue per job gave, which a fixed
// set of threads, or one serial or concurrent queue, would lose: were every thread blocked, a job that
// would unblock them (one of another log, whose writer is free; a handler's answer) would wait for them.
// (A concurrent dispatch queue is also no way out: on Linux its work runs on the threads that Swift's
// global executor uses too.) What a job costs is a lock and a condition signal when a thread is parked,
// as in a steady stream of hops; a burst of blocked jobs starts a thread each, as libdispatch did for
// the per-hop queues. A thread done with its job parks for the next one unless `maxIdle` threads are
// parked already, and ends when no job came for a while (5 s for the shared set, as libdispatch keeps
// its idle threads), so the set shrinks back after bursts without starting threads for each of them.

#if canImport(Glibc)
import Glibc
#endif

/// Work for ``OffPoolThreads``: one object per job (the only allocation a job costs the caller).
package protocol OffPoolJob: AnyObject, Sendable {
    /// The job; runs once, on a thread of the set.
    func run()
    /// Runs right after ``run()``, once the thread is ready for another job: resume the job's waiter
    /// here, so a waiter that starts its next job at once finds this thread parked, not a new one.
    func finish()
}

/// A process-wide set of threads that run jobs off Swift's cooperative pool, reusing parked threads and
/// starting one whenever none is parked (see the file comment). Thread-safe.
package final class OffPoolThreads: @unchecked Sendable {
    /// The set the transaction managers use: up to 256 threads parked, each for 5 s at most. A burst of
    /// waiting steps (one per committing task under back-pressure) starts a thread each; the next burst
    /// finds them parked instead of starting them again, and they end once the bursts stop.
    package static let shared = OffPoolThreads(maxIdle: 256, idleNanoseconds: 5_000_000_000)

    /// A thread of the set: the job handed to it while it is parked, and what wakes it (guarded by the
    /// set's lock).
    private final class Worker: @unchecked Sendable {
        var job: (any OffPoolJob)?
        let wake: Condition
        init(_ lock: Lock) { wake = Condition(lock) }
    }

    /// Threads kept parked at most.
    package let maxIdle: Int
    /// How long a thread stays parked before it ends.
    package let idleNanoseconds: UInt64
    /// Guards everything below.
    private let lock = Lock()
    /// Parked threads, the most recently parked last (it is the one woken next: its stack is warm).
    private var idle: [Worker] = []
    private var started: UInt64 = 0
    private var jobs: UInt64 = 0
    private var live = 0

    package init(maxIdle: Int, idleNanoseconds: UInt64) {
        self.maxIdle = max(1, maxIdle)
        self.idleNanoseconds = idleNanoseconds
        idle.reserveCapacity(self.maxIdle)
    }

    /// What the set has done so far.
    package struct Counts: Sendable, Equatable {
        /// Jobs run.
        package var jobs: UInt64
        /// Threads started (a job found none parked).
        package var threadsStarted: UInt64
        /// Threads alive now, parked or running a job.
        package var threadsAlive: Int
        /// Threads parked now.
        package var threadsParked: Int
    }

    package var counts: Counts {
        lock.withLock { Counts(jobs: jobs, threadsStarted: started, threadsAlive: live, threadsParked: idle.count) }
    }

    /// Runs `job` on a parked thread, or on a new one. Returns false, without running it, only when no
    /// thread can be started (the system's thread limit); the caller then runs it itself (`run()`, then
    /// `finish()`).
    package func run(_ job: any OffPoolJob) -> Bool {
        lock.lock()
        jobs &+= 1
        if let worker = idle.popLast() {
            worker.job = job
            lock.unlock()
            worker.wake.signal()
            return true
        }
        started &+= 1
        live += 1
        lock.unlock()
        let worker = Worker(lock)
        worker.job = job
        if trySpawnThread({ [self] in serve(worker) }) { return true }
        lock.withLock {
            jobs &-= 1
            started &-= 1
            live -= 1
        }
        return false
    }

    /// A thread's loop: runs its job, then parks for the next one; ends if enough threads are parked, or
    /// when no job came for `idleNanoseconds`.
    private func serve(_ worker: Worker) {
        while runJob(of: worker) {
            lock.lock()
            let deadline = monotonicNanos() &+ idleNanoseconds
            while worker.job == nil {
                let now = monotonicNanos()
                if now >= deadline {
                    // Still parked (a job is handed over with the thread taken off `idle`, under the lock).
                    if let i = idle.firstIndex(where: { $0 === worker }) { idle.remove(at: i) }
                    live -= 1
                    lock.unlock()
                    return
                }
                worker.wake.wait(nanoseconds: deadline - now)
            }
            lock.unlock()
        }
    }

    /// Runs the job handed to `worker`, puts the thread among the parked ones (before the job's
    /// ``OffPoolJob/finish()``, so the job's waiter finds it there) unless `maxIdle` are, and returns
    /// whether it did; the reference to the job is dropped on return, so a parked thread holds none.
    private func runJob(of worker: Worker) -> Bool {
        let job = lock.withLock { () -> (any OffPoolJob)? in
            defer { worker.job = nil }
            return worker.job
        }
        job?.run()
        let parks = lock.withLock { () -> Bool in
            guard idle.count < maxIdle else {
                live -= 1
                return false
            }
            idle.append(worker)
            return true
        }
        job?.finish()
        return parks
    }
}
