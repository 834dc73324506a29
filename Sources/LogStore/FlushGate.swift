// Where threads blocked in a synchronous `flush(upTo:)` sleep, and how the thread that finishes a batch
// wakes them: with one futex wake for the whole batch instead of one semaphore post per thread.
//
// Why: at 64 writers a batch carries ~45 commits, and posting 45 semaphores one by one kept the writer
// thread busy for longer than the fdatasync itself (measured on a 2-vCPU VM: 3.2-3.5 µs of waker CPU per
// wake-up with a semaphore each, 1.4-1.5 µs with one FUTEX_WAKE for all; process CPU per wake-up 8.3-9.3
// vs 5.4-5.9 µs). See docs/PERFORMANCE.md, "Waking flushers: one futex wake per batch".
//
// How: the sync batches that move the durable LSN are numbered (generations). A sleeper works out the
// first generation that can make its target durable (the batch in progress if that batch covers the
// target, otherwise the one after it) and sleeps on the futex word of that generation's parity until the
// word changes. The word changes only when a generation of that parity completes, so a batch wakes the
// threads it satisfied and not the ones waiting for the next batch. A woken thread that is still not
// durable (a batch cut short by `maxBatchBytes`) takes a new ticket and sleeps again. Failure and close
// change both words, and every sleeper re-checks the log's state.

import CFutex
import LogFormat

final class FlushGate: @unchecked Sendable {
    /// `words[p]`: changes whenever a generation of parity `p` completes. Written only under the log's
    /// lock; read by the kernel and by sleepers.
    private let words: UnsafeMutablePointer<UInt32>
    /// The durable LSN's raw value, stored with release order when a batch completes, so a woken thread
    /// sees whether its target is durable without taking the log's lock.
    private let durable: UnsafeMutablePointer<UInt64>

    // Guarded by the log's lock.
    /// Sync batches completed.
    private var generation: UInt32 = 0
    /// Tickets issued per parity since that parity's word last changed: whether a wake is needed.
    private var sleepers: (UInt32, UInt32) = (0, 0)
    /// Parities whose word changed while someone slept on it, to be woken once the lock is released.
    private var pendingWakes: UInt8 = 0
    /// What the sync batch in progress will make durable; nil when none is in progress.
    var inFlightCover: LSN?

    /// What a sleeper waits on: the word of one parity, while it still holds `value`.
    struct Ticket {
        let parity: Int
        let value: UInt32
    }

    /// The words to wake once the log's lock is released (a bit per parity).
    struct Wakes: Equatable {
        /// Bit `p` set: wake the sleepers of parity `p`.
        let parities: UInt8
        static let none = Wakes(parities: 0)
    }

    init(durable lsn: LSN) {
        words = .allocate(capacity: 2)
        words.initialize(repeating: 0, count: 2)
        durable = .allocate(capacity: 1)
        durable.initialize(to: lsn.rawValue)
    }

    deinit {
        words.deallocate()
        durable.deallocate()
    }

    /// True when `target` is durable, read without the log's lock.
    func isDurable(_ target: LSN) -> Bool { txlog_load_acquire_u64(durable) >= target.rawValue }

    /// Registers a thread about to sleep until `target` is durable. Holds the lock.
    func ticketLocked(for target: LSN) -> Ticket {
        let covered = inFlightCover.map { target <= $0 } ?? false
        let expected = generation &+ (inFlightCover == nil || covered ? 1 : 2)
        let parity = Int(expected & 1)
        if parity == 0 { sleepers.0 += 1 } else { sleepers.1 += 1 }
        return Ticket(parity: parity, value: txlog_load_acquire_u32(words + parity))
    }

    /// Sleeps until the ticket's word changes. May return early (signals, a wake meant for others):
    /// the caller re-checks and takes a new ticket if it must wait on.
    func sleep(_ ticket: Ticket) { txlog_futex_wait(words + ticket.parity, ticket.value) }

    /// True while the ticket's word still holds its value: a sleeper on it would sleep.
    func isPending(_ ticket: Ticket) -> Bool { txlog_load_acquire_u32(words + ticket.parity) == ticket.value }

    /// A sync batch finished and the durable LSN is now `lsn`: completes one generation. Holds the lock.
    func completeLocked(durable lsn: LSN) {
        inFlightCover = nil
        txlog_store_release_u64(durable, lsn.rawValue)
        advanceLocked()
    }

    /// Changes both words (failure, close): every sleeper wakes and re-checks the log's state. Holds the lock.
    func releaseEveryoneLocked() {
        inFlightCover = nil
        advanceLocked()
        advanceLocked()
    }

    /// The wakes owed since the last call; perform them with ``wake(_:)`` after releasing the lock.
    func takeWakesLocked() -> Wakes {
        let w = Wakes(parities: pendingWakes)
        pendingWakes = 0
        return w
    }

    /// Wakes the sleepers of the words in `wakes`. Call without the log's lock.
    func wake(_ wakes: Wakes) {
        if wakes.parities & 1 != 0 { txlog_futex_wake_all(words) }
        if wakes.parities & 2 != 0 { txlog_futex_wake_all(words + 1) }
    }

    private func advanceLocked() {
        generation &+= 1
        let parity = Int(generation & 1)
        txlog_store_release_u32(words + parity, generation)
        let waiting = parity == 0 ? sleepers.0 : sleepers.1
        if parity == 0 { sleepers.0 = 0 } else { sleepers.1 = 0 }
        if waiting > 0 { pendingWakes |= 1 << UInt8(parity) }
    }
}
