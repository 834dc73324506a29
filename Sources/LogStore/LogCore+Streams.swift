// Stream management: create, open, delete, list; per-stream base and archive tail; restart areas.

import LogFormat

/// A snapshot of one stream.
public struct StreamInfo: Sendable, Equatable {
    /// The stream's id, as records carry it (0: the default stream).
    public var id: UInt16
    /// Empty for the log's default stream 0.
    public var name: String
    /// The stream's base: its records below it may be recycled.
    public var baseLSN: LSN
    /// The stream's last record (`LSN.null` before its first).
    public var lastLSN: LSN
    /// The stream's latest restart area (`LSN.null` when it has none).
    public var restartLSN: LSN
    /// The stream's archive tail: its records from there on are not archived yet (`LSN.null`: not set).
    public var archiveTail: LSN
    /// Bytes the stream holds reserved for records it has not appended yet.
    public var reservedBytes: Int
    /// Records the stream holds reserved.
    public var reservedRecords: Int
    /// The largest record size among them (0 for none): an append using a reservation may be at most
    /// this large.
    public var largestReservedRecord: Int = 0
}

extension LogCore {
    static let maxStreamID = 4095

    /// Creates a stream and returns its id. With `openIfExists`, a stream of that name is opened instead,
    /// also one another thread is creating at this moment (once its creation is durable; if it is undone,
    /// this call creates the stream).
    func createStream(_ name: String, openIfExists: Bool = false) throws -> UInt16 {
        let created: (id: UInt16, new: Bool) = try lock.withLock {
            try checkUsable()
            if openIfExists {
                while state.pendingStreamNames.contains(name) {
                    streamCreated.wait()
                    try checkUsable()
                }
                if let id = state.streamIDs[name] { return (id, false) }
            }
            if readOnly { throw LogError(.readOnly, "the log is open read-only") }
            try LogCore.validateStreamName(name)
            guard state.streamIDs[name] == nil, !state.pendingStreamNames.contains(name) else {
                throw LogError(.invalidArgument, "stream \"\(name)\" already exists")
            }
            guard Int(state.nextStreamID) <= LogCore.maxStreamID else {
                throw LogError(.invalidArgument, "a log has at most \(LogCore.maxStreamID) streams over its lifetime")
            }
            try beginMetaChangeLocked()
            let id = state.nextStreamID
            state.nextStreamID += 1
            var hot = StreamHot()
            hot.exists = true
            setHot(id, hot)
            state.cold[id] = StreamCold(name: name)
            state.pendingStreamNames.insert(name)
            return (id, true)
        }
        guard created.new else { return created.id }
        let id = created.id
        try writeMetaChange { error in
            state.hot[Int(id)].exists = false
            state.cold[id] = nil
            state.pendingStreamNames.remove(name)
            // A refusal (a stream table too big for a base-file slot) wrote nothing, and no record carries
            // an id of a stream not yet durable: the id is free again unless a later create took the next
            // one. After an I/O error the base file may name it: never reused.
            if let e = error as? LogError, e.code != .io, e.code != .failed, state.nextStreamID == id + 1 { state.nextStreamID = id }
            streamCreated.broadcast()
        }
        // Durable in the base file now: it can be opened (before, a crash could forget a stream that had
        // already been opened and written, and the next create reused its id and read its records).
        lock.withLock {
            state.pendingStreamNames.remove(name)
            state.streamIDs[name] = id
            streamCreated.broadcast()
        }
        return id
    }

    func streamID(named name: String) throws -> UInt16 {
        try lock.withLock {
            try checkUsable()
            guard let id = state.streamIDs[name] else { throw LogError(.notFound, "no stream \"\(name)\"") }
            return id
        }
    }

    /// Deletes a stream: it stops pinning the log at once; its records are ignored from now on.
    func deleteStream(_ name: String) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        guard !name.isEmpty else { throw LogError(.invalidArgument, "the default stream cannot be deleted") }
        let (id, hot, cold): (UInt16, StreamHot, StreamCold) = try lock.withLock {
            try checkUsable()
            guard let id = state.streamIDs[name], let cold = state.cold[id] else { throw LogError(.notFound, "no stream \"\(name)\"") }
            try beginMetaChangeLocked()
            let hot = state.hot[Int(id)]
            state.hot[Int(id)] = StreamHot()
            state.cold[id] = nil
            state.streamIDs[name] = nil
            streamDeletions.add(1, ordering: .releasing)
            return (id, hot, cold)
        }
        // The stream's reservations stay counted (with the largest reserved cost) until the deletion is
        // durable. Released first, another stream could reserve that space meanwhile, and a deletion that
        // failed and put them back promised it twice, with the floor's slack per container boundary gone.
        try writeMetaChange { _ in
            state.hot[Int(id)] = hot
            state.cold[id] = cold
            state.streamIDs[name] = id
        }
        lock.withLock {
            state.reservedTotal -= hot.reservedBytes
            if state.reservedTotal == 0 { state.maxReservedCost = 0 }
        }
        // Its base and archive tail no longer pin containers: the update recycled those only it held.
        shrinkIfPolicyAllows()
    }

    func streamInfoLocked(_ id: UInt16) -> StreamInfo? {
        guard Int(id) < state.hot.count, state.hot[Int(id)].exists, let cold = state.cold[id], !state.pendingStreamNames.contains(cold.name)
        else { return nil }
        let h = state.hot[Int(id)]
        return StreamInfo(
            id: id, name: cold.name, baseLSN: h.base, lastLSN: h.last, restartLSN: cold.restart, archiveTail: cold.archiveTail,
            reservedBytes: h.reservedBytes, reservedRecords: h.reservedRecords, largestReservedRecord: h.reservedLargest)
    }

    func streamInfo(_ id: UInt16) throws -> StreamInfo {
        try lock.withLock {
            guard let info = streamInfoLocked(id) else { throw LogError(.notFound, "stream \(id) was deleted") }
            return info
        }
    }

    func allStreams() -> [StreamInfo] {
        lock.withLock { (0..<state.hot.count).compactMap { streamInfoLocked(UInt16($0)) } }
    }

    // MARK: Base and archive tail

    /// Moves a stream's base forward. The new base is made durable first, so the base file never
    /// names a base that a crash could take away.
    func advanceBase(stream: UInt16, to lsn: LSN) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        let durable: LSN = try lock.withLock {
            try checkUsable()
            guard let info = streamInfoLocked(stream) else { throw LogError(.notFound, "stream \(stream) was deleted") }
            guard lsn.isValid else { throw LogError(.invalidArgument, "\(lsn) is not a valid base", lsn: lsn) }
            guard info.baseLSN == .null || lsn >= info.baseLSN else {
                throw LogError(.invalidArgument, "new base \(lsn) is below the current base \(info.baseLSN)", lsn: lsn)
            }
            guard lsn <= state.lastLSN else {
                throw LogError(.invalidArgument, "new base \(lsn) is beyond the last LSN \(state.lastLSN)", lsn: lsn)
            }
            // A stream with no base yet (no records) could otherwise name a recycled container: the log's
            // base would move back there, and reading the log from its base would find no container.
            if let oldest = state.logicalToPhysical.keys.min(), lsn.container < oldest {
                throw LogError(.invalidArgument, "new base \(lsn) is below the oldest container the log holds (\(oldest))", lsn: lsn)
            }
            return state.durableLSN
        }
        try checkNamesRecord(lsn, "new base")
        if lsn > durable { try flush(upTo: lsn) }
        // Concurrent calls race; the base only ever moves forward. The oldest container is checked again,
        // under `metaLock` (so no base-file update is between deciding on recycling and applying it): a
        // stream with no base pins nothing, and recycling may have freed `lsn`'s container while the record
        // was looked up. Set there, the base put the log's base below its oldest container, and reading the
        // log from its base threw notFound, also after reopen.
        beforeBaseMovesForTesting?()
        let old = try metaLock.withLock {
            try lock.withLock {
                // Deleted since the first check (its flush let go of the lock): a base set on its entry now
                // was reported as moved, of a stream that no longer exists.
                guard state.cold[stream] != nil else { throw LogError(.notFound, "stream \(stream) was deleted") }
                if let oldest = state.logicalToPhysical.keys.min(), lsn.container < oldest {
                    throw LogError(.invalidArgument, "new base \(lsn) is below the oldest container the log holds (\(oldest))", lsn: lsn)
                }
                try beginMetaChangeLocked()
                let old = state.hot[Int(stream)].base
                if old == .null || lsn > old { state.hot[Int(stream)].base = lsn }
                return old
            }
        }
        try writeMetaChange { _ in if state.hot[Int(stream)].base == lsn { state.hot[Int(stream)].base = old } }
        shrinkIfPolicyAllows()
    }

    /// Throws `invalidArgument` unless `lsn` is a record's LSN (of any stream). A base is where reading
    /// the log (or a stream) from its base starts: one that names no block made every such read report
    /// the block there damaged (`corrupt`), in a healthy log.
    func checkNamesRecord(_ lsn: LSN, _ what: String) throws {
        let found: DecodedBlock?
        do { found = try block(at: lsn.blockLSN, absentIsCorrupt: false).0 } catch let e as LogError where e.code == .notFound || e.code == .invalidArgument {
            throw LogError(.invalidArgument, "\(what) \(lsn) is not a record's LSN: \(e.message)", lsn: lsn)
        }
        guard let found, Int(lsn.slot) < found.slots.count else {
            throw LogError(.invalidArgument, "\(what) \(lsn) is not a record's LSN", lsn: lsn)
        }
    }

    /// Sets the archive tail of one stream (or of the whole log when `stream` is nil). Containers
    /// between the archive tail and the bases are kept (pending archive) until the tail passes them.
    /// The tail must be durable (at or below the durable LSN) and inside the log's active region, CLFS's
    /// [min(base, archive tails), last]: a record's LSN at or above the log's base or the lowest archive
    /// tail, else `invalidArgument`.
    func setArchiveTail(stream: UInt16?, to lsn: LSN) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        try lock.withLock {
            try checkUsable()
            guard lsn == .null || lsn <= state.lastLSN else {
                throw LogError(.invalidArgument, "archive tail \(lsn) is beyond the last LSN", lsn: lsn)
            }
            // Only durable records can have been archived (CLFS: ERROR_LOG_TAIL_INVALID). The base file
            // records the tail as given: one above the durable LSN could name, after a crash, a position
            // the log reuses for other records.
            guard lsn == .null || lsn <= state.durableLSN else {
                throw LogError(
                    .invalidArgument, "archive tail \(lsn) is beyond the durable LSN \(state.durableLSN): only durable records can be archived; flush first",
                    lsn: lsn)
            }
            try checkArchiveTailInLogLocked(lsn)
        }
        // A tail inside a block (or past its records) made `archiveExtents` start a copy mid-block.
        if lsn != .null { try checkNamesRecord(lsn, "archive tail") }
        // Again, under `metaLock` too: recycling may have passed it while the record was looked up, or a
        // base-file update under way may have decided (without this tail) to free its container. Checked
        // under the log's lock alone, such an update freed it after the tail was set, and the tail named
        // records already gone: `archiveExtents` then gave a backup tool nothing to copy for them.
        let old = try metaLock.withLock {
            try lock.withLock {
                try checkUsable()
                try checkArchiveTailInLogLocked(lsn)
                if let stream, state.cold[stream] == nil { throw LogError(.notFound, "stream \(stream) was deleted") }
                try beginMetaChangeLocked()
                let old = stream.map { state.cold[$0]?.archiveTail ?? .null } ?? state.archiveTail
                if let stream { state.cold[stream]?.archiveTail = lsn } else { state.archiveTail = lsn }
                return old
            }
        }
        // Not written: the tail in force stays the old one (unless a later call set another meanwhile).
        try writeMetaChange { _ in
            if let stream {
                if state.cold[stream]?.archiveTail == lsn { state.cold[stream]?.archiveTail = old }
            } else if state.archiveTail == lsn {
                state.archiveTail = old
            }
        }
        // A tail moved on frees the containers it alone held (pending archive), as a base moved on does.
        shrinkIfPolicyAllows()
    }

    /// Throws `invalidArgument` for an archive tail below the log's active region (CLFS:
    /// ERROR_LOG_TAIL_INVALID): below both the log's base and every archive tail, or in a container
    /// already recycled. Records there are released; a tail naming them would claim to keep what is gone.
    private func checkArchiveTailInLogLocked(_ lsn: LSN) throws {
        guard lsn != .null else { return }
        if let oldest = state.logicalToPhysical.keys.min(), lsn.container < oldest {
            throw LogError(.invalidArgument, "archive tail \(lsn) is below the oldest container the log holds (\(oldest))", lsn: lsn)
        }
        let lowest = [readFloorLocked(), logWideBaseLocked()].filter { $0 != .null }.min()
        if let lowest, lsn < lowest {
            throw LogError(.invalidArgument, "archive tail \(lsn) is below the log's base and every archive tail (\(lowest))", lsn: lsn)
        }
    }

    /// The lowest archive tail set (of a stream or of the log), or nil when none is.
    func lowestArchiveTailLocked() -> LSN? {
        var lowest = state.archiveTail == .null ? nil : state.archiveTail
        for c in state.cold.values where c.archiveTail != .null && c.archiveTail < lowest ?? .invalid { lowest = c.archiveTail }
        return lowest
    }

    /// The lowest LSN the log keeps readable: its base, or the lowest archive tail below it (records from
    /// there on are kept until archived). Null when neither is set.
    func readFloorLocked() -> LSN {
        guard let tail = lowestArchiveTailLocked() else { return state.baseLSN }
        return state.baseLSN == .null ? tail : min(state.baseLSN, tail)
    }

    /// `updateMeta`, entering the failed state when the base file could not be written or synced.
    func updateMetaOrFail(cleanShutdown: Bool = false, policy: LogPolicy? = nil, _ change: (inout BaseRecord) throws -> Void) throws {
        do { try updateMeta(cleanShutdown: cleanShutdown, policy: policy, change) } catch let e as LogError where e.code == .io {
            lock.withLock { failLocked(e) }
            throw lock.withLock { state.failed ?? e }
        }
    }

    // MARK: Restart areas

    /// Appends a restart record, flushes it, then records it (and optionally a new base) in the base
    /// file in one atomic update. A crash leaves either the old or the new restart area.
    ///
    /// `coveredThrough` (instead of `newBase`): the restart area covers the stream's records up to that
    /// LSN. The base moves to the restart record itself when no record of the stream lies between the two
    /// (decided under the lock, as the record goes in), else to `coveredThrough`.
    func writeRestartArea(
        stream: UInt16, _ data: UnsafeRawBufferPointer, newBase: LSN?, coveredThrough: LSN? = nil, useReservation: Bool
    ) throws -> LSN {
        let base: LSN = try lock.withLock {
            guard let info = streamInfoLocked(stream) else { throw LogError(.notFound, "stream \(stream) was deleted") }
            if let newBase {
                guard newBase.isValid, info.baseLSN == .null || newBase >= info.baseLSN, newBase <= state.lastLSN else {
                    throw LogError(.invalidArgument, "new base \(newBase) must be between the current base and the last LSN", lsn: newBase)
                }
            }
            if let coveredThrough, coveredThrough != .null {
                guard coveredThrough.isValid, coveredThrough <= state.lastLSN else {
                    throw LogError(.invalidArgument, "covered-through \(coveredThrough) must be null or at most the last LSN", lsn: coveredThrough)
                }
            }
            return info.baseLSN
        }
        if let newBase { try checkNamesRecord(newBase, "new base") }
        // One at or below the base never becomes the base: it need not name a record still there.
        if let coveredThrough, coveredThrough != .null, coveredThrough > base { try checkNamesRecord(coveredThrough, "covered-through LSN") }
        beforeRestartAppendedForTesting?()
        // The previous-LSN link (the stream's restart record before this one) is set as the record goes in.
        let lsn = try append(
            data, type: .restart, stream: stream, previous: .invalid, undoNext: .invalid, useReservation: useReservation,
            restartCovering: coveredThrough)
        try flush(upTo: lsn)
        // What this call put in force, and what it replaced: taken back if the base file is not written.
        let (oldRestart, oldBase, movedTo): (LSN?, LSN?, LSN?) = try lock.withLock {
            guard let cold = state.cold[stream] else { throw LogError(.notFound, "stream \(stream) was deleted") }
            try beginMetaChangeLocked()
            var replaced: (LSN?, LSN?, LSN?) = (nil, nil, nil)
            // Never backwards: restart areas written concurrently come back from their flushes in any
            // order, and the newest (highest LSN) is the one in force.
            if lsn > cold.restart {
                replaced.0 = cold.restart
                state.cold[stream]?.restart = lsn
            }
            let target: LSN?
            if let coveredThrough {
                target = cold.restartCoversAllBelow == lsn ? lsn : (coveredThrough == .null ? nil : coveredThrough)
            } else {
                target = newBase
            }
            // Never backwards: a concurrent restart area (or advanceBase) may have moved it further since
            // the check above, and containers behind that may already be recycled.
            if let target, target > state.hot[Int(stream)].base {
                replaced.1 = state.hot[Int(stream)].base
                replaced.2 = target
                state.hot[Int(stream)].base = target
            }
            return replaced
        }
        // A base file not written leaves the restart area and base in force as they were (unless a later
        // call moved them on meanwhile): `readRestartArea` gave the area this call reported as not written.
        try writeMetaChange { _ in
            if let oldRestart, state.cold[stream]?.restart == lsn { state.cold[stream]?.restart = oldRestart }
            if let oldBase, let movedTo, state.hot[Int(stream)].base == movedTo { state.hot[Int(stream)].base = oldBase }
        }
        shrinkIfPolicyAllows()
        return lsn
    }
}
