// Space: free space, the floor reservations need, log-full handling (grow within policy, then ask the streams
// that pin the tail). Reserve and release are in LogCore+Reservations.swift.
// Archive extents are in LogCore+Archive.swift, the policy and auto-shrink are in LogCore+Policy.swift.

#if canImport(Glibc)
import Glibc
#endif
import LogFormat

/// Set on a thread while it runs tail-pinned handlers (see `handleLogFull`).
private let tailPinnedHandlersRunningKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

extension LogCore {
    /// Worst-case bytes one record of `dataLength` can take: its footprint plus a block of its own.
    func reservationCost(_ dataLength: Int) -> Int {
        RecordHeader.footprint(dataLength: dataLength) + BlockHeader.size + Format.sectorSize
    }

    var containerDataBytes: Int { Int(dataEnd) - Format.containerDataStart }

    /// Bytes still writable without recycling: the rest of the current container plus every free one.
    /// `freeContainers`: ``freeContainerCountLocked()`` if the caller has it (nil: counted here).
    func freeBytesLocked(freeContainers: Int? = nil) -> Int {
        tailLeftLocked() + (freeContainers ?? freeContainerCountLocked()) * containerDataBytes
    }

    /// Bytes left in the current container after the open block's records.
    private func tailLeftLocked() -> Int {
        let o = state.open
        return max(0, Int(dataEnd) - Int(o.offset) - BlockHeader.size - o.used)
    }

    /// The rest of the current container, which an append of a record costing up to `cost` wastes when the
    /// record may not fit there and moves to the next container; 0 when it surely fits.
    func tailLostLocked(cost: Int) -> Int {
        let tailLeft = tailLeftLocked()
        return tailLeft < cost ? tailLeft : 0
    }

    /// Free containers (no logical id, not being deleted): a walk of every container, so not per append.
    func freeContainerCountLocked() -> Int {
        freeContainersCountedForTesting?()
        return state.containers.values.reduce(0) { $0 + ($1.logical == 0 && !$1.pendingDelete ? 1 : 0) }
    }

    /// What normal appends must leave free so every reserved record still fits: the reserved bytes, plus
    /// one worst-case record of slack for each container boundary they might cross.
    /// `freeContainers` as for ``freeBytesLocked(freeContainers:)``.
    func reservationFloorLocked(freeContainers: Int? = nil) -> Int {
        guard state.reservedTotal > 0 else { return 0 }
        return state.reservedTotal + ((freeContainers ?? freeContainerCountLocked()) + 1) * state.maxReservedCost
    }

    /// Whether a plain append of a record costing `cost` leaves the space the reservations need.
    /// Asked by every plain append while a reservation is in force (a transaction manager or key-value
    /// store keeps one for its next restart area), so it first tries a bound that needs no count of the
    /// free containers: each free container adds `containerDataBytes` to the free bytes and
    /// `maxReservedCost` to the floor, so while a container holds at least one worst-case reserved record,
    /// the check with no free container is the strictest, and passing it passes the full one. Only near
    /// the end of a container does the answer need the count (a walk of every container, under the lock).
    func clearsReservationFloorLocked(cost: Int) -> Bool {
        guard state.reservedTotal > 0 else { return true }
        let tailLeft = tailLeftLocked()
        let lost = tailLeft < cost ? tailLeft : 0
        if containerDataBytes >= state.maxReservedCost, tailLeft - lost - cost >= state.reservedTotal + state.maxReservedCost {
            return true
        }
        let free = freeContainerCountLocked()
        return freeBytesLocked(freeContainers: free) - lost - cost >= reservationFloorLocked(freeContainers: free)
    }

    /// Whether one free container can go without leaving less free space than the reservations need
    /// (with one container fewer, the floor has one container boundary fewer).
    func freeContainerRemovableLocked() -> Bool {
        guard state.reservedTotal > 0 else { return true }
        return freeBytesLocked() - containerDataBytes >= reservationFloorLocked() - state.maxReservedCost
    }

    // MARK: Log full

    /// A stream (or the log-wide archive tail) that keeps the oldest container from being recycled.
    struct TailPinner {
        /// The stream; nil for the log-wide archive tail.
        var id: UInt16?
        var name: String
        /// The stream's base is below the target.
        var byBase: Bool
        /// The stream's (or the log's) archive tail is below the target.
        var byArchiveTail: Bool

        /// How a `logFull` message names it.
        var label: String {
            guard id != nil else { return "archive tail" }
            let n = name.isEmpty ? "(default)" : name
            switch (byBase, byArchiveTail) {
            case (true, true): return "\(n) (base and archive tail)"
            case (false, true): return "\(n) (archive tail)"
            default: return n
            }
        }
    }

    /// Streams (and the archive tail) that keep the oldest container from being recycled, with the
    /// LSN each must reach, and what of each pins it: its base, its archive tail, or both.
    func pinningLocked() -> (target: LSN, pinners: [TailPinner]) {
        let holding = state.containers.values.filter { $0.logical != 0 }.map(\.logical)
        // In the last logical container (2^32 − 1) nothing can come after the oldest: `+ 1` would trap.
        guard let oldest = holding.min(), oldest < .max else { return (.null, []) }
        let target = LSN(uncheckedContainer: oldest + 1, blockOffset: UInt64(Format.containerDataStart), slot: 0)
        var pinners: [TailPinner] = []
        for (i, h) in state.hot.enumerated() where h.exists {
            let id = UInt16(i)
            let cold = state.cold[id]
            let tail = cold?.archiveTail ?? .null
            let pinsBase = h.base != .null && h.base < target
            let pinsArchive = tail != .null && tail < target
            if pinsBase || pinsArchive { pinners.append(TailPinner(id: id, name: cold?.name ?? "", byBase: pinsBase, byArchiveTail: pinsArchive)) }
        }
        if state.archiveTail != .null, state.archiveTail < target {
            pinners.append(TailPinner(id: nil, name: "archive tail", byBase: false, byArchiveTail: true))
        }
        return (target, pinners)
    }

    /// The handlers to call for `pinners`: a stream's tail-pinned handler when its base pins the tail, its
    /// archive-tail-pinned handler when its archive tail does.
    func pinnedHandlersLocked(_ pinners: [TailPinner]) -> [@Sendable (LSN) -> Void] {
        var handlers: [@Sendable (LSN) -> Void] = []
        for p in pinners {
            guard let id = p.id, let cold = state.cold[id] else { continue }
            if p.byBase, let h = cold.tailPinned { handlers.append(h) }
            if p.byArchiveTail, let h = cold.archiveTailPinned { handlers.append(h) }
        }
        return handlers
    }

    /// What an append or a reservation that found the log full needs before it tries again.
    enum SpaceNeed {
        /// A free container (an append that must move to the next container).
        case freeContainer
        /// A plain append of a record costing this much, stopped by the reservations' floor.
        case floor(cost: Int)
        /// A reservation costing `cost`, its largest record `largestCost`.
        case reservation(cost: Int, largestCost: Int)
    }

    /// How far one append's (or reservation's) log-full handling has gone, across its tries.
    struct LogFullProgress {
        /// Auto-grow added nothing (the policy allows no more, or it failed): not tried again.
        var growthDone = false
        /// Why auto-grow failed, for the `logFull` message.
        var growthFailure: LogError?
        /// Times the tail-pinned handlers were called (at most twice).
        var handlerRounds = 0
        /// Counted in `state.makingRoom` (auto-shrink removes no container): from the first call of
        /// `handleLogFull` until the caller ends (`endMakingRoom`), its retries included.
        var holdsMakingRoom = false
    }

    /// Ends what `handleLogFull` counted in `state.makingRoom` for `progress`, if anything (no lock taken
    /// otherwise), and queues the shrink check deferred meanwhile, if the last such count ended.
    func endMakingRoom(_ progress: inout LogFullProgress) {
        guard progress.holdsMakingRoom else { return }
        progress.holdsMakingRoom = false
        let shrinkDue = lock.withLock { () -> Bool in
            state.makingRoom -= 1
            return takeDeferredShrinkLocked()
        }
        if shrinkDue { shrinkInBackground() }
    }

    /// Called by an append that found no free container, or (a plain append) that the reservations'
    /// floor stopped, or by a reservation the free space cannot hold. Grows the log within policy, then
    /// asks the streams that pin the tail to move; returns when something changed, throws `logFull`
    /// otherwise. The caller retries after a return, with the same `progress`: growth goes on step by
    /// step while the policy allows (one step may not be enough: each container added also adds a
    /// reserved record of slack to the reservations' floor), the handlers are called at most twice.
    /// After a return the log stays counted in `state.makingRoom` until the caller ends it
    /// (`endMakingRoom`, once its retry has taken the room or it gave up): let go here, an
    /// auto-shrink between this return and the retry removed the container just grown or freed, and the
    /// retry said `logFull`.
    func handleLogFull(_ progress: inout LogFullProgress, generation: UInt64, need: SpaceNeed) throws {
        // Counted while it runs and until the caller's retry: auto-shrink removes no container meanwhile.
        // The handlers move bases, and each such move checked auto-shrink, which removed the containers
        // this append had just grown the log by (or found free): it then said `logFull` with the policy
        // allowing growth.
        let (durable, last) = lock.withLock { () -> (LSN, LSN) in
            if !progress.holdsMakingRoom {
                progress.holdsMakingRoom = true
                state.makingRoom += 1
            }
            return (state.durableLSN, state.lastLSN)
        }
        do { try makeRoom(&progress, generation: generation, need: need, durable: durable, last: last) } catch {
            endMakingRoom(&progress)
            throw error
        }
    }

    /// The body of `handleLogFull`, counted in `state.makingRoom`.
    private func makeRoom(_ progress: inout LogFullProgress, generation: UInt64, need: SpaceNeed, durable: LSN, last: LSN) throws {
        // Room for the retry: a free container; for an append the reservations' floor stopped, the floor
        // cleared (the same test the append makes, so a retry that finds room passes it); for a
        // reservation, the test `reserve` makes. A free container alone, while the floor still stops the
        // append, would retry forever.
        func roomLocked() -> Bool {
            switch need {
            case .freeContainer: return freeContainerCountLocked() > 0
            case .floor(let cost): return clearsReservationFloorLocked(cost: cost)
            case .reservation(let cost, let largest): return reservationShortageLocked(cost: cost, largestCost: largest) == nil
            }
        }
        // Data that is not durable yet cannot be recycled; make it durable first.
        if durable < last { try flush(upTo: last) }
        if !progress.growthDone {
            // addContainers decides how many under the lock; none while another add is in progress,
            // which this append waits for and then retries with what it added. Growth that fails before
            // the base file names anything (no disk space for the file, a base-file slot too full to name
            // it) leaves the log as it was: the streams pinning the tail are asked to move, as when the
            // policy allows no growth. A failed base-file write (`failed`) or a closed log ends the append.
            // Bounded: each step adds containers, up to the policy's maximum count and size.
            do {
                if try !addContainers(.policyGrowth).isEmpty { return }
            } catch let e as LogError where e.code == .io || e.code == .invalidArgument {
                progress.growthFailure = e
            }
            let grown = lock.withLock { () -> Bool in
                while state.containersBeingAdded > 0, state.spaceGeneration == generation, state.failed == nil, !state.closed {
                    spaceCondition.wait()
                }
                return state.spaceGeneration != generation
            }
            if grown { return }
            progress.growthDone = true
        }
        let (target, pinners, handlers) = lock.withLock { () -> (LSN, [TailPinner], [@Sendable (LSN) -> Void]) in
            let (t, p) = pinningLocked()
            return (t, p, pinnedHandlersLocked(p))
        }
        // A handler usually appends itself (a restart area with a new base). If that append finds the log
        // full too, it must not call the handlers again: that recursion has no end (a TM checkpoint that
        // did not fit overflowed the stack). Such a nested append just gets `logFull`.
        if progress.handlerRounds < 2, !handlers.isEmpty, pthread_getspecific(tailPinnedHandlersRunningKey) == nil,
            beginHandlerCalls()
        {
            progress.handlerRounds += 1
            defer { endHandlerCalls() }
            for h in handlers { h(target) }
        }
        let moved = lock.withLock { state.spaceGeneration != generation || roomLocked() }
        if moved { return }
        try advanceRecyclingIfPossible()
        let (room, reserved) = lock.withLock { (state.spaceGeneration != generation || roomLocked(), state.reservedTotal) }
        if room { return }
        let growth = progress.growthFailure.map { "; auto-grow failed: \($0.message)" } ?? ""
        let floorStopped: Bool
        if case .freeContainer = need { floorStopped = false } else { floorStopped = true }
        let reservedNote = floorStopped && reserved > 0 ? "; \(reserved) bytes of the free space are reserved (release reservations)" : ""
        let names = pinners.map(\.label)
        let pinning = names.isEmpty
            ? "no stream pins the tail (add containers)"
            : names.joined(separator: ", ") + (names.count == 1 ? " pins" : " pin") + " the tail and must advance to \(target) (or add containers)"
        throw LogError(
            .logFull,
            "the log is full: \(pinning)\(reservedNote)\(growth)",
            errno: progress.growthFailure?.errno)
    }

    /// Called (under `lock`) by an append that has just moved the log into a free container. When that
    /// leaves fewer than a quarter of the log's containers free (none, in a log of up to four), queues one
    /// call of the tail-pinned handlers, as the log-full path makes them (CLFS asks its clients to advance
    /// their tails at a policy's threshold too), but while the current container still has room: a
    /// handler's checkpoint, a restart area with a new base, needs room to be written, and called only
    /// once the log is full it found none (its append got `logFull`), so the bases never moved and the log
    /// stayed full for good. Runs on `pinnedAheadQueue`, never on the appending thread (which may hold its
    /// caller's locks), one call at a time; their appends that find the log full do not call them again. Once per
    /// target (the oldest container holding records): handlers that cannot move their bases (an undecided
    /// transaction pins them) are not asked again and again, each checkpoint's restart area filling the log
    /// a little more and the container switches it makes asking for the next one.
    func callPinnersAheadIfLowLocked() {
        guard !state.pinnersAheadQueued, !pinnersAheadDisabledForTesting, freeContainerCountLocked() * 4 < keptContainerCountLocked()
        else { return }
        let target = pinningLocked().target
        guard target != .null, target != state.pinnersAheadTarget else { return }
        state.pinnersAheadTarget = target
        state.pinnersAheadQueued = true
        pinnedAheadQueue.async { [self] in
            let (target, handlers) = lock.withLock { () -> (LSN, [@Sendable (LSN) -> Void]) in
                state.pinnersAheadQueued = false
                guard state.failed == nil else { return (.null, []) }
                let (t, p) = pinningLocked()
                return (t, pinnedHandlersLocked(p))
            }
            guard !handlers.isEmpty, beginHandlerCalls() else { return }
            defer { endHandlerCalls() }
            pinnersCalledAheadForTesting?(target)
            for h in handlers { h(target) }
        }
    }

    /// Marks the calling thread as calling tail-pinned handlers (their appends that find the log full do
    /// not call them again) and counts it for close(); false once close() has begun, when none may start.
    func beginHandlerCalls() -> Bool {
        let started = lock.withLock { () -> Bool in
            guard !state.closed, !state.stopping else { return false }
            state.handlerCallsRunning += 1
            return true
        }
        if started { pthread_setspecific(tailPinnedHandlersRunningKey, UnsafeRawPointer(bitPattern: 1)) }
        return started
    }

    /// Ends `beginHandlerCalls`.
    func endHandlerCalls() {
        pthread_setspecific(tailPinnedHandlersRunningKey, nil)
        lock.withLock {
            state.handlerCallsRunning -= 1
            if state.handlerCallsRunning == 0 { spaceCondition.broadcast() }
        }
    }

    /// Whether the calling thread is calling tail-pinned handlers (a handler calling close() must not
    /// wait for itself).
    var callingHandlersOnThisThread: Bool { pthread_getspecific(tailPinnedHandlersRunningKey) != nil }

    /// Re-evaluates recycling (a base may have moved without a base-file write yet).
    func advanceRecyclingIfPossible() throws {
        try updateMetaOrFail { _ in }
    }
}
