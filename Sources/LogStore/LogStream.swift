// One named stream of a multiplexed log.

import LogFormat

/// A stream: a log of its own inside a shared log. Streams share containers, blocks and fsyncs, so one
/// group flush covers every stream's records.
///
/// ```swift
/// let orders = try log.createStream("orders")   // "ktm" is the transaction manager's default stream
/// let lsn = try orders.append(Array("prepare T1".utf8))
/// try await orders.flush(upTo: lsn)
/// try orders.writeRestartArea(Array(checkpoint), newBase: lsn)
/// ```
///
/// Thread-safe. A stream's LSNs strictly increase; LSNs of different streams compare in log order.
public final class LogStream: Sendable {
    let core: LogCore
    /// The stream's id inside the log (0 is the log's default stream).
    public let id: UInt16
    /// The stream's name (empty for the default stream).
    public let name: String

    init(core: LogCore, id: UInt16, name: String) {
        self.core = core
        self.id = id
        self.name = name
    }

    // MARK: Appending

    /// Appends a record to this stream. Waits only for back-pressure or a full log, as
    /// `LogStore.append` explains.
    ///
    /// - Parameters:
    ///   - bytes: the record's data, copied before this returns.
    ///   - previous: client-defined link to an earlier record (`LSN.invalid` ends the chain); an LSN
    ///     beyond the log's last record is `invalidArgument`.
    ///   - undoNext: client-defined link for undo processing (`LSN.invalid` ends the chain); likewise.
    ///   - usingReservation: consume one record reserved with ``reserve(recordSizes:)``; such an
    ///     append never fails for lack of space. The record must fit a reservation: at most as large as
    ///     the largest record size the stream still has reserved, otherwise `invalidArgument`. It uses up
    ///     the smallest reserved size that fits it (the other sizes stay reserved, for a later
    ///     ``release(recordSizes:)`` to name).
    @discardableResult
    public func append(
        _ bytes: UnsafeRawBufferPointer, previous: LSN = .invalid, undoNext: LSN = .invalid, usingReservation: Bool = false
    ) throws -> LSN {
        try core.append(bytes, type: .data, stream: id, previous: previous, undoNext: undoNext, useReservation: usingReservation)
    }

    /// Appends a record given as a byte array.
    @discardableResult
    public func append(_ bytes: [UInt8], previous: LSN = .invalid, undoNext: LSN = .invalid, usingReservation: Bool = false) throws -> LSN {
        try bytes.withUnsafeBytes { try append($0, previous: previous, undoNext: undoNext, usingReservation: usingReservation) }
    }

    /// Blocks until every record of the log at or below `lsn` is durable (on a read-only log, `readOnly`
    /// above its ``LogStore/durableLSN``, as `LogStore.flush(upTo:)`).
    @available(*, noasync, message: "use the async flush(upTo:)")
    public func flush(upTo lsn: LSN) throws { try core.flush(upTo: lsn) }

    /// Returns once every record of the log at or below `lsn` is durable; never blocks a thread.
    public func flush(upTo lsn: LSN) async throws { try await core.flushAsync(upTo: lsn) }

    /// Calls `completion` once every record of the log at or below `lsn` is durable, or with the error
    /// that says it will not be. See ``LogStore/whenDurable(_:_:)`` for where it runs and its rules.
    public func whenDurable(_ lsn: LSN, _ completion: @escaping @Sendable (LogError?) -> Void) {
        core.whenDurable(lsn, completion)
    }

    // MARK: Reading

    /// The record at `lsn`, which must belong to this stream. Throws `notFound` once the stream is deleted.
    public func read(_ lsn: LSN) throws -> LogRecord {
        _ = try core.streamInfo(id)
        let r = try core.read(lsn)
        guard r.stream == id else { throw LogError(.notFound, "\(lsn) belongs to another stream", lsn: lsn) }
        return r
    }

    /// This stream's records in LSN order from `lsn` (default: the stream's base). An `lsn` at or above
    /// the log's base, or at or above an archive tail below it, must be a record's LSN (of any stream), as
    /// for ``LogStore/records(from:)``; one below both starts the cursor at the log's base.
    public func records(from lsn: LSN = .null) throws -> LogCursor {
        try core.checkOpen()
        let info = try core.streamInfo(id)  // notFound once the stream is deleted
        var start = lsn
        if start == .null {
            guard info.baseLSN != .null else { return LogCursor(core: core, from: core.lock.withLock { core.state.open.position }, stream: id) }
            start = info.baseLSN
        }
        // Records below the log's base are readable down to the lowest archive tail (kept until archived).
        let (base, floor) = core.lock.withLock { (core.state.baseLSN, core.readFloorLocked()) }
        if base != .null, start < floor {
            start = base
        } else if lsn != .null {
            // A position that names no block would make the cursor report the block there damaged.
            _ = try core.read(start)
        }
        return LogCursor(core: core, from: start, stream: id)
    }

    /// This stream's records along the previous-LSN chain, starting with `lsn`. A link to another
    /// stream's record is `notFound` there (``LogStore/previousChain(from:)`` follows it), as is one below
    /// the log's base and every archive tail (its records may be recycled): the chain never returns
    /// another container cycle's record.
    public func previousChain(from lsn: LSN) -> LogChain { LogChain(read: read, upcoming: lsn, link: \.previous) }

    /// This stream's records along the undo-next chain, starting with `lsn`; its links are checked as
    /// ``previousChain(from:)``'s are.
    public func undoNextChain(from lsn: LSN) -> LogChain { LogChain(read: read, upcoming: lsn, link: \.undoNext) }

    // MARK: Base, archive tail, restart areas

    /// Moves the stream's base: records below it are no longer needed. Containers that every stream's
    /// base and the archive tails have passed are recycled.
    ///
    /// - Throws: `invalidArgument` for a base that is not a record's LSN (of any stream), below the
    ///   current one, beyond the last LSN, or in a container already recycled; `notFound` for a deleted
    ///   stream.
    public func advanceBase(to lsn: LSN) throws { try core.advanceBase(stream: id, to: lsn) }

    /// Sets this stream's archive tail: records from it on are kept until archived (null: not archived),
    /// and stay readable (``read(_:)``, the chains, cursors started there) when the bases have passed
    /// them, as CLFS keeps the records between the archive tail and the base readable.
    /// Only durable records can be archived: an LSN beyond the durable LSN is `invalidArgument` (flush
    /// first). The tail is a position in the whole log, as for ``LogStore/setArchiveTail(_:)``: a
    /// record's LSN (of any stream) at or above the log's base or the lowest archive tail, else
    /// `invalidArgument`.
    public func setArchiveTail(_ lsn: LSN) throws { try core.setArchiveTail(stream: id, to: lsn) }

    /// Appends a restart record, flushes it, and records it in the base file atomically, optionally
    /// moving the base (`newBase`: a record's LSN between the current base and the last LSN, else
    /// `invalidArgument`). Returns the restart record's LSN. A crash leaves the old or the new restart
    /// area, never a blend.
    @discardableResult
    public func writeRestartArea(_ bytes: [UInt8], newBase: LSN? = nil, usingReservation: Bool = false) throws -> LSN {
        try bytes.withUnsafeBytes { try core.writeRestartArea(stream: id, $0, newBase: newBase, useReservation: usingReservation) }
    }

    /// Appends a restart record that covers this stream's records up to `coveredThrough` (the state it
    /// holds reflects them), flushes it, and records it in the base file atomically with a new base: the
    /// restart record itself when no record of this stream lies between `coveredThrough` and it (decided
    /// as the record goes in, so one appended concurrently is never skipped), else `coveredThrough`.
    /// The base never moves backwards. Returns the restart record's LSN.
    ///
    /// With ``writeRestartArea(_:newBase:usingReservation:)`` the base can reach no further than the last
    /// record before the restart area; a stream whose only record in the oldest container is its previous
    /// restart area went on pinning that container after a checkpoint, and needed a second one. Here a
    /// checkpoint with nothing after `coveredThrough` leaves the stream holding nothing older than it.
    ///
    /// Reading from `coveredThrough` after a restart (``records(from:)``) still works when the base has
    /// passed it: a cursor from below the log's base starts at the base.
    ///
    /// - Throws: `invalidArgument` for a `coveredThrough` beyond the last LSN, or above the stream's base
    ///   and not a record's LSN; what ``writeRestartArea(_:newBase:usingReservation:)`` throws.
    @discardableResult
    public func writeRestartArea(_ bytes: [UInt8], coveredThrough: LSN, usingReservation: Bool = false) throws -> LSN {
        try bytes.withUnsafeBytes {
            try core.writeRestartArea(stream: id, $0, newBase: nil, coveredThrough: coveredThrough, useReservation: usingReservation)
        }
    }

    /// The latest restart area, or nil if none was written.
    ///
    /// - Throws: `notFound` once the bases have moved past it (with ``advanceBase(to:)``) and it is below
    ///   the log's base and every archive tail: its records may be recycled; a restart area meant to be
    ///   read back keeps the stream's base at or below it (``writeRestartArea(_:coveredThrough:usingReservation:)``
    ///   moves it no further).
    public func readRestartArea() throws -> LogRecord? {
        let lsn = try core.streamInfo(id).restartLSN
        return lsn == .null ? nil : try read(lsn)
    }

    /// The restart area written before `restart` (an LSN returned by ``readRestartArea()`` or by this
    /// method), or nil at the start of the chain. A restart record's previous-LSN link names the stream's
    /// restart record appended just before it (in this open, else the one in force at open), so restart
    /// areas written at once from several threads all stay on the chain, in LSN order, as CLFS chains
    /// every restart record. The chain also ends (nil) at one no longer held: below the log's base and
    /// every archive tail.
    public func previousRestartArea(before restart: LSN) throws -> LogRecord? {
        let r = try read(restart)
        guard r.type == .restart else { throw LogError(.invalidArgument, "\(restart) is not a restart record", lsn: restart) }
        guard r.previous.isValid else { return nil }
        do { return try read(r.previous) } catch let e as LogError where e.code == .notFound { return nil }
    }

    // MARK: Reservations and space

    /// Reserves space for future records of these sizes (undo or compensation records, say).
    /// An append `usingReservation` of a record that fits the reservation (no larger than the largest
    /// size reserved) then never fails for lack of space: plain appends are refused
    /// (`logFull`) rather than take reserved space, and neither ``LogStore/removeContainer(_:)`` nor
    /// auto-shrink removes a free container the reservations need.
    ///
    /// A reservation the log cannot hold now is handled as an append that finds the log full: the log
    /// is made durable, grows within its policy, and the tail-pinned handlers are called
    /// (``onTailPinned(_:)``), so this may wait as such an append does (`LogStore.append` explains).
    ///
    /// Reservations belong to this open of the log: they are not written to disk, `close()` drops the
    /// ones still outstanding, and a reopened log has none (reserve again, for instance for the
    /// transactions recovery finds undecided).
    ///
    /// - Throws: `invalidArgument` for no sizes or a size outside 0...``LogStore/maxRecordSize``;
    ///   `logFull` when, after that, the free space cannot hold them on top of what is already reserved,
    ///   or all reservations together would hold more than all but one of the log's containers (those
    ///   pending delete do not count): that would pin the log (refused at once, without growing the
    ///   log, when it would even of the log grown to its policy's maximum, and so is a reservation whose
    ///   bytes and one largest reserved record of slack per container would not fit even that log with
    ///   every container free);
    ///   `readOnly` for a log opened read-only; `notFound` for a deleted stream; `failed`; `closed`.
    public func reserve(recordSizes: [Int]) throws { try core.reserve(stream: id, sizes: recordSizes) }

    /// Gives back reservations made with ``reserve(recordSizes:)``: each size must be one the stream has
    /// reserved and not yet used (by an append `usingReservation`) or released, as CLFS's
    /// `FreeReservedLog` frees the same sizes that were reserved. A release that names any other size
    /// releases nothing. When the policy's auto-shrink is on, free containers the reservations had kept
    /// may then be removed (as after an append `usingReservation` uses a reservation up, in the background).
    ///
    /// - Throws: `invalidArgument` for a size outside 0...``LogStore/maxRecordSize``, or for a size (counted
    ///   with its repeats) the stream has not reserved; `notFound` for a deleted stream.
    public func release(recordSizes: [Int]) throws { try core.release(stream: id, sizes: recordSizes) }

    /// Registers the handler called when the log is full and this stream's base pins its tail. It
    /// receives the LSN the stream's base must reach; it should advance the base (or write a restart area
    /// with a new base) before returning. It runs on the appending thread. Appends the handler makes do
    /// not call the handlers again: if the log is still full for them, they throw `logFull`.
    ///
    /// It is also called ahead of a full log, on a thread of the log's own: when an append moves the log
    /// into a free container and fewer than a quarter of the log's containers are left free (none left,
    /// in a log of up to four), the handlers of the streams pinning the tail are called, while the current
    /// container still has room for the restart area the handler writes; once for as long as the same
    /// container is the oldest holding records (a handler that cannot move is not asked again until then).
    /// (Called only once the log is full, a handler's restart area could find no room, and the log stayed
    /// full.)
    ///
    /// A stream whose archive tail, not its base, pins the tail is not asked to move its base (that would
    /// free nothing): its ``onArchiveTailPinned(_:)`` handler is called instead.
    ///
    /// No handler is called once ``LogStore/close()`` has begun, and `close()` waits for the calls in
    /// progress (their calls into the log throw `closed` by then): none runs after `close()` returned.
    public func onTailPinned(_ handler: (@Sendable (LSN) -> Void)?) {
        core.lock.withLock { core.state.cold[id]?.tailPinned = handler }
    }

    /// Registers the handler called when the log is full and this stream's archive tail pins its tail
    /// (CLFS: `ERROR_LOG_PINNED_ARCHIVE_TAIL`). It receives the LSN the archive tail must reach; it should
    /// archive the records up to there and move the archive tail (``setArchiveTail(_:)``) before
    /// returning. It runs as ``onTailPinned(_:)``'s handler does, and when both the base and the archive
    /// tail pin the tail, both handlers are called.
    public func onArchiveTailPinned(_ handler: (@Sendable (LSN) -> Void)?) {
        core.lock.withLock { core.state.cold[id]?.archiveTailPinned = handler }
    }

    /// A snapshot of this stream's LSNs and reservations.
    public func info() throws -> StreamInfo { try core.streamInfo(id) }

    /// The stream's last record; `LSN.null` before its first, or once the stream was deleted or the log closed.
    public var lastLSN: LSN { (try? core.streamInfo(id).lastLSN) ?? .null }
    /// The stream's base; `LSN.null` once the stream was deleted or the log closed.
    public var baseLSN: LSN { (try? core.streamInfo(id).baseLSN) ?? .null }
}
