// close(), and the metadata changes it waits for: a change counted by `beginMetaChangeLocked` is
// written by its own base-file update, or undone, before close() makes its last one.

import Dispatch
import LogFormat

extension LogCore {
    /// Counts a metadata change (a stream created or deleted, a base, archive tail, restart area or
    /// policy) that is about to change the in-memory state every base-file update writes (`updateMeta`
    /// reads the stream table, archive tail and policy from it): under `lock`, after its own checks and
    /// just before that change. Throws `closed` (changing nothing) once close() has begun. close() waits
    /// for every counted change to end (`endMetaChange`) before it makes its last base-file update, so
    /// that update never writes a change whose call then reports `closed`: a call either succeeds, its
    /// change durable, or fails having changed nothing (an I/O error aside, which fails the log).
    func beginMetaChangeLocked() throws {
        try checkUsable()
        state.metaChangesInFlight += 1
    }

    /// Ends a change counted by `beginMetaChangeLocked`, once its base-file update succeeded or the change
    /// was undone.
    func endMetaChange() {
        lock.withLock {
            state.metaChangesInFlight -= 1
            if state.metaChangesInFlight == 0 { spaceCondition.broadcast() }  // a close() waiting for it
        }
    }

    /// Writes the base file for a change counted by `beginMetaChangeLocked`; when the write fails or is
    /// refused, `undo` (called under `lock` with the error) takes the in-memory change back. Ends the
    /// count either way, after `undo`.
    func writeMetaChange(undo: (any Error) -> Void = { _ in }) throws {
        defer { endMetaChange() }
        beforeMetaChangeWrittenForTesting?()
        do { try updateMetaOrFail { _ in } } catch {
            lock.withLock { undo(error) }
            throw error
        }
    }

    /// Operations close() waits for before its last base-file update: container adds and removals, and
    /// metadata changes, that began before it.
    private func operationsUnderWayLocked() -> Bool {
        state.containersBeingAdded > 0 || state.containersBeingRemoved > 0 || state.metaChangesInFlight > 0
    }

    /// Flushes everything, stops the writer and records a clean shutdown.
    func close() throws {
        let alreadyClosed: Bool = lock.withLock {
            if state.closed || state.stopping { return true }
            state.stopping = true
            workCondition.signal()
            return false
        }
        if alreadyClosed {
            // Another close is shutting the log down: wait for it, and report what it found. Not from a
            // completion, nor from a tail-pinned handler: that close may be waiting for this very call.
            if DispatchQueue.getSpecific(key: onCompletionQueue) != ObjectIdentifier(self), !callingHandlersOnThisThread {
                lock.withLock { while !state.closeFinished { spaceCondition.wait() } }
            }
            if let failed = lock.withLock({ state.failed }) { throw failed }
            return
        }
        // Container adds and removals that began before `stopping` end first: their base-file update is
        // still allowed (the log is not `closed` yet), and the files they hold are then in the live table
        // that releaseFiles closes. Released under them instead, an add that then failed unlinked its new
        // file after close() had returned, when a reopened log may already have created a container of
        // that very name; a removal put its container's descriptor back after releaseFiles (a leak).
        // Metadata changes under way end first too (see `beginMetaChangeLocked`).
        if lock.withLock({ operationsUnderWayLocked() }) { closeWaitingForOperationsForTesting?() }
        lock.withLock {
            while operationsUnderWayLocked() { spaceCondition.wait() }
        }
        defer {
            // Containers recycled away are unlinked before close returns. An update that recycled them
            // counted its deletion under `metaLock` (see updateMeta); taking it once here waits for one
            // still holding it, also when close() did not make its own last update (a failed log).
            metaLock.withLock {}
            deletions.wait()
            releaseFiles()
            let closeHandlers = lock.withLock {
                closeHandlersTaken = true
                defer { self.closeHandlers.removeAll() }
                return self.closeHandlers
            }
            for h in closeHandlers { h() }
            lock.withLock {
                state.closeFinished = true
                spaceCondition.broadcast()
            }
        }
        if !readOnly { writerDone.wait() }
        // Every `whenDurable` completion owed has been queued by now; let them run before returning.
        if DispatchQueue.getSpecific(key: onCompletionQueue) != ObjectIdentifier(self) { completions.sync {} }
        let (failed, durable) = lock.withLock { () -> (LogError?, LSN) in
            state.closed = true
            closedForReads.store(true, ordering: .releasing)
            spaceCondition.broadcast()
            gate.releaseEveryoneLocked()  // a flush that registered after the writer's last batch
            gate.wake(gate.takeWakesLocked())
            return (state.failed, state.durableLSN)
        }
        // Tail-pinned handlers being called (none starts after `stopping`): waited for, so that no handler
        // runs after close() returned, when its owner may have freed what it uses. Waited for here, once
        // the log is closed, so nothing a handler does can wait for close (its appends, flushes and
        // metadata calls now throw `closed`). Not by a handler closing the log itself.
        if !callingHandlersOnThisThread {
            if lock.withLock({ state.handlerCallsRunning > 0 }) { closeWaitingForHandlersForTesting?() }
            lock.withLock { while state.handlerCallsRunning > 0 { spaceCondition.wait() } }
        }
        if let failed { throw failed }
        if readOnly { return }
        let (end, last, chain) = lock.withLock { (state.open.position, state.lastLSN, state.chainCRC) }
        try updateMetaOrFail(cleanShutdown: true) { m in
            m.durableWatermark = max(m.durableWatermark, durable)
            // Everything is durable and this is the end: the next open starts scanning here, not at the
            // start of the container, so it reads nothing.
            if end.container == m.scanStart.container, end.blockOffset + UInt64(BlockHeader.size) <= dataEnd {
                m.scanStart = end
                m.scanStartPreviousLSN = last
                m.scanStartPreviousCRC = chain
            }
        }
        // Containers recycled away are unlinked, and the directory synced, before close returns (as the
        // defer above waits for too): a failed sync there fails the log, and close says so, not success.
        metaLock.withLock {}
        deletions.wait()
        if let failed = lock.withLock({ state.failed }) { throw failed }
    }
}
