// Per-stream state of an open log, and how it is persisted in the base file and rebuilt by recovery.

import LogFormat

/// Fields every append of a stream reads or writes (kept free of references, so no retain per append).
struct StreamHot {
    var exists = false
    /// Records below this LSN are no longer needed (null: nothing needed yet).
    var base: LSN = .null
    var last: LSN = .null
    var reservedBytes = 0
    var reservedRecords = 0
    /// The largest record size the stream has reserved and not yet used or released (the last of
    /// `StreamCold.reservedSizes`): an append using a reservation may be at most this large.
    var reservedLargest = 0
}

/// The rest of a stream's state.
struct StreamCold {
    var name: String
    var archiveTail: LSN = .null
    var restart: LSN = .null
    /// The stream's newest restart record appended in this open (null: none yet). The next restart
    /// record links to it (or, before the first, to `restart`), decided as it goes in.
    var restartAppended: LSN = .null
    /// The last restart record appended with `restartCovering` where no record of the stream lay between
    /// the LSN it covers and itself: the base may move to it (see `writeRestartArea`).
    var restartCoversAllBelow: LSN = .null
    var tailPinned: (@Sendable (LSN) -> Void)?
    /// Called instead when the stream's archive tail (not its base) pins the log's tail.
    var archiveTailPinned: (@Sendable (LSN) -> Void)?
    /// The record sizes this stream has reserved and not yet used or released, ascending: a release
    /// must name sizes reserved, and an append using a reservation takes the smallest that fits it.
    var reservedSizes: [Int] = []
    /// The stream's last record in each container its appends have moved on from, oldest first, back to
    /// the newest one below the scan start the base file records (see `streamEntriesLocked`). Appends may
    /// run many containers ahead of the writer's container switches: the one before `last`'s container
    /// alone was not enough to know the stream's last record below a scan start two or more behind.
    var lastInEarlierContainers: [LSN] = []

    /// Removes the smallest reserved size of at least `size`; returns it and the largest size still
    /// reserved (0 for none), or nil when no reserved size fits. In place: no allocation.
    mutating func takeReservedSize(atLeast size: Int) -> (taken: Int, largest: Int)? {
        var lo = 0
        var hi = reservedSizes.count
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if reservedSizes[mid] < size { lo = mid + 1 } else { hi = mid }
        }
        guard lo < reservedSizes.count else { return nil }
        let taken = reservedSizes.remove(at: lo)
        return (taken, reservedSizes.last ?? 0)
    }

    /// `reservedSizes` without one of each of `sizes`, or nil when some size (counted with its repeats) is
    /// not reserved.
    func reservedSizes(releasing sizes: [Int]) -> [Int]? {
        var rest: [Int] = []
        rest.reserveCapacity(reservedSizes.count)
        var i = 0
        for size in sizes.sorted() {
            while i < reservedSizes.count, reservedSizes[i] < size {
                rest.append(reservedSizes[i])
                i += 1
            }
            guard i < reservedSizes.count, reservedSizes[i] == size else { return nil }
            i += 1
        }
        rest.append(contentsOf: reservedSizes[i...])
        return rest
    }
}

extension LogCore {
    /// The stream entries a base file puts in force, and the id the next created stream gets. A log that
    /// never had named streams has the default stream only (`defaultLast` its last LSN). The next id is
    /// above every id in the table: the format allows a table holding stream 0 with a next id of 0 (see
    /// docs/format/base-file.md), and taken as it stood, the next create handed out id 0 again, the
    /// default stream's, so two streams shared their records.
    static func streamTable(of meta: BaseRecord, defaultLast: LSN) -> (entries: [StreamEntry], nextID: UInt16) {
        guard !meta.streams.isEmpty else { return ([StreamEntry(id: 0, name: "", base: meta.baseLSN, last: defaultLast)], 1) }
        // Ids are below 65535 here (each is below the stored next id, or both are 0), so the + 1 fits.
        let above = Int(meta.streams.map(\.id).max() ?? 0) + 1
        return (meta.streams, UInt16(clamping: max(Int(meta.nextStreamID), above)))
    }

    /// Builds the live stream table from the base file plus what recovery found in the scanned tail.
    func loadStreams(meta: BaseRecord, recovered: RecoveryResult) {
        let entries: [StreamEntry]
        (entries, state.nextStreamID) = LogCore.streamTable(of: meta, defaultLast: recovered.lastLSN)
        // An entry flagged deleted is no stream (its id stays used: it is below the next id). Loaded, it came
        // back to life, pinned the log with its base, took its name from a live stream of the same name, and
        // the next base-file update wrote that name twice: a base file no open can read.
        for e in entries where !e.isDeleted {
            var hot = StreamHot()
            hot.exists = true
            hot.base = e.base
            hot.last = e.last
            var cold = StreamCold(name: e.name, archiveTail: e.archiveTail, restart: e.restart)
            if let scanned = recovered.streamLast[e.id], scanned > hot.last {
                if hot.last.isValid, hot.last.container < scanned.container { cold.lastInEarlierContainers = [hot.last] }
                hot.last = scanned
            }
            if hot.base == .null, let first = recovered.streamFirst[e.id] { hot.base = first }
            setHot(e.id, hot)
            state.cold[e.id] = cold
            state.streamIDs[e.name] = e.id
        }
        state.baseLSN = logWideBaseLocked()
    }

    func setHot(_ id: UInt16, _ hot: StreamHot) {
        let i = Int(id)
        if state.hot.count <= i { state.hot.append(contentsOf: repeatElement(StreamHot(), count: i + 1 - state.hot.count)) }
        state.hot[i] = hot
    }

    /// The lowest base of any stream that has one, or the end of the log when none pins anything.
    func logWideBaseLocked() -> LSN {
        var base = LSN.invalid
        for h in state.hot where h.exists && h.base != .null && h.base < base { base = h.base }
        return base == .invalid ? .null : base
    }

    /// The stream table as the base file should record it now. Only durable positions are recorded:
    /// a `last` below the scan start (recovery rescans everything from there, and everything below it is
    /// durable), and a `base` at or below the durable LSN. Forgets each stream's `lastInEarlierContainers`
    /// older than the newest one below the scan start (scan starts only move forward).
    func streamEntriesLocked(scanStart: LSN, previous: [StreamEntry]) -> [StreamEntry] {
        var before: [UInt16: StreamEntry] = [:]
        for e in previous { before[e.id] = e }
        var entries: [StreamEntry] = []
        for (i, h) in state.hot.enumerated() where h.exists {
            let id = UInt16(i)
            guard let cold = state.cold[id] else { continue }
            var last = before[id]?.last ?? .null
            if h.last != .null, h.last < scanStart {
                last = h.last
                if !cold.lastInEarlierContainers.isEmpty { state.cold[id]?.lastInEarlierContainers = [] }
            } else if let k = cold.lastInEarlierContainers.lastIndex(where: { $0 < scanStart }) {
                last = max(last, cold.lastInEarlierContainers[k])
                if k > 0 { state.cold[id]?.lastInEarlierContainers.removeFirst(k) }
            }
            let base = h.base <= max(state.durableLSN, state.syncedLSN) ? h.base : (before[id]?.base ?? .null)
            entries.append(
                StreamEntry(id: id, name: cold.name, base: base, last: last, archiveTail: cold.archiveTail, restart: cold.restart))
        }
        return entries
    }

    /// Checks a stream name.
    static func validateStreamName(_ name: String) throws {
        let n = name.utf8.count
        guard n >= 1, n <= StreamEntry.maxNameLength else {
            throw LogError(.invalidArgument, "a stream name is 1...\(StreamEntry.maxNameLength) bytes of UTF-8, got \(n)")
        }
        guard !name.contains("\0") else { throw LogError(.invalidArgument, "a stream name cannot contain NUL") }
    }
}
