// The public face of a log. See docs/ARCHITECTURE.md for how the pieces fit.

@_exported public import LogFormat
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A log: a base file plus fixed-size, preallocated container files in one directory.
///
/// ```swift
/// let log = try LogStore.create(at: "/var/lib/app/log", options: .init())
/// let lsn = try log.append(Array("hello".utf8))
/// try await log.flush(upTo: lsn)          // durable once this returns
/// let record = try log.read(lsn)
/// try log.close()
/// ```
///
/// `append` only copies the record into memory and returns its LSN. Durability is a separate step:
/// `flush(upTo:)` returns once every record at or below the LSN is on stable storage. One background
/// writer gathers the blocks of all waiting flushers into large writes with one `fdatasync` per batch
/// (group commit). After an I/O error the log is *failed*: nothing more is acknowledged; reopen it.
///
/// Thread-safe: any number of threads or tasks may append, flush and read at once.
public final class LogStore: Sendable {
    let core: LogCore

    private init(core: LogCore) { self.core = core }

    deinit {
        try? core.close()
    }

    // MARK: Creating and opening

    /// Creates a new log in `directory` (created if missing, but not its parent, which must exist; it must
    /// not already hold a log) and opens it.
    /// Both sets of options are checked first: one out of range is `invalidArgument` and creates nothing.
    /// ``LogOpenOptions/isCancelled`` is also asked before each container is created: once it returns
    /// true, the containers created so far are removed and this throws `terminated` (no log is created;
    /// cancelled in the open that follows, the log exists and a later open finds it).
    public static func create(
        at directory: String, options: LogCreateOptions = .init(), openOptions: LogOpenOptions = .init(),
        io: any FileIO = PosixFileIO()
    ) throws -> LogStore {
        try options.validate()
        try openOptions.validate()
        if !io.fileExists(directory) { try io.makeDirectory(directory) }
        // The directory's own entry is durable only once its parent is synced. Also when it exists: a
        // create that failed at this very sync and is retried finds the directory made.
        try io.fsyncDirectory(parentDirectory(of: directory))
        let basePath = directory + "/" + Format.baseFileName
        if io.fileExists(basePath) { throw LogError(.invalidArgument, "a log already exists here", path: directory) }
        let logID = LogID.random()
        var entries: [ContainerEntry] = []
        for i in 0..<options.containerCount {
            let physical = UInt32(i)
            let path = ContainerFiles.path(directory: directory, physicalID: physical)
            // Zero-filling and syncing large containers takes long; a terminate should not wait for all
            // of them. No base file names these files yet: they go, and a later create starts afresh.
            if let isCancelled = openOptions.isCancelled, isCancelled() {
                for earlier in 0..<physical { try? io.unlink(ContainerFiles.path(directory: directory, physicalID: earlier)) }
                throw LogError(.terminated, "the create was cancelled", path: directory)
            }
            let fd = try ContainerFiles.create(io: io, path: path, logID: logID, physicalID: physical, size: options.containerSize)
            io.close(fd)
            entries.append(ContainerEntry(physicalID: physical, logicalID: i == 0 ? 1 : 0, state: i == 0 ? .active : .inactive, endOffset: 0))
        }
        try io.fsyncDirectory(directory)
        let maxRecord = min(UInt64(options.maxRecordSize), LogLimits.largestRecord(containerSize: options.containerSize))
        var record = BaseRecord(
            generation: 1, flags: 0, logID: logID, containerSize: options.containerSize, blockSize: UInt32(options.blockSize),
            maxRecordSize: UInt32(maxRecord), codec: options.codec, epoch: 0, baseLSN: .null, durableWatermark: .null,
            scanStart: LSN(uncheckedContainer: 1, blockOffset: UInt64(Format.containerDataStart), slot: 0),
            scanStartPreviousLSN: .null, scanStartPreviousCRC: 0, nextPhysicalID: UInt32(options.containerCount),
            containers: entries)
        record.streams = [StreamEntry(id: 0, name: "")]
        try record.validate()
        try BaseFile.create(io: io, directory: directory, record: record)
        return try open(at: directory, options: openOptions, io: io)
    }

    /// Opens an existing log and recovers its end.
    ///
    /// A writable open takes an exclusive lock (a second writer gets `locked`), scans forward from the
    /// durable position recorded in the base file, drops a torn tail, and starts a new epoch. A read-only
    /// open takes no lock and writes nothing, so it works while another process writes the log; it sees the
    /// log as it found it until ``refresh()``. Its ``durableLSN`` is only what it can prove durable (the
    /// base file's durable watermark and the durable hints of the blocks it read), which may be below its
    /// ``lastLSN``: a live writer's fdatasync of the last blocks may not have returned.
    ///
    /// - Throws: `invalidArgument` for options out of range (see ``LogOpenOptions``), before any file is
    ///   touched; `notFound`, `locked`, `corrupt` for a missing, busy or damaged log; `terminated` once
    ///   ``LogOpenOptions/isCancelled`` returns true (nothing is left open or locked).
    public static func open(at directory: String, options: LogOpenOptions = .init(), io: any FileIO = PosixFileIO()) throws -> LogStore {
        try options.validate()
        let basePath = directory + "/" + Format.baseFileName
        guard io.fileExists(directory) else { throw LogError(.notFound, "no such directory", path: directory) }
        guard io.fileExists(basePath) else { throw LogError(.notFound, "not a TxLog log (no \(Format.baseFileName))", path: directory) }
        var attempt = 0
        while true {
            do { return try openOnce(at: directory, options: options, io: io, mayRetry: attempt < 3) } catch is BaseFileChanged { attempt += 1 }
        }
    }

    /// A read-only open found blocks newer than the base file it read, or a container it names missing, and
    /// the base file has changed since: a writer moved on meanwhile. The open starts over.
    private struct BaseFileChanged: Error {}

    private static func openOnce(at directory: String, options: LogOpenOptions, io: any FileIO, mayRetry: Bool) throws -> LogStore {
        let basePath = directory + "/" + Format.baseFileName
        let readOnly = options.readOnly || options.recovery == .pointInTime
        let baseFD = try io.open(basePath, mode: readOnly ? .readOnly : .readWrite)
        var opened: [Int32] = []
        // Set once a `LogCore` holds the descriptors: its deinit closes them, so the catch below must not.
        var ownedByCore = false
        do {
            if !readOnly {
                guard try lockRidingOutInheritedDescriptors(io: io, fd: baseFD, isCancelled: options.isCancelled) else {
                    throw LogError(.locked, "the log is already open for writing (by another process, or by another open in this one)", path: directory)
                }
                // Before anything is acknowledged, the log's names are made durable: a create whose
                // directory sync failed (after the base file's rename, say) leaves a log that opens, and
                // whose entries no one synced otherwise.
                try io.fsyncDirectory(directory)
                try io.fsyncDirectory(parentDirectory(of: directory))
            }
            var (meta, notes) = try BaseFile.readNewest(io: io, fd: baseFD, path: basePath)
            // A live writer's update of the other slot, read mid-write, fails its checksum for a moment: what
            // strict recovery calls a base-file anomaly. As for a block caught mid-write (step 5), a read-only
            // open reads the base file again after 1, 2 and 4 ms; only a slot that stays damaged counts.
            if readOnly, options.recovery == .strict {
                for attempt in 0..<3 where !notes.isEmpty {
                    if let isCancelled = options.isCancelled, isCancelled() {
                        throw LogError(.terminated, "the open was cancelled while it read the base file again")
                    }
                    usleep(1_000 << attempt)
                    (meta, notes) = try BaseFile.readNewest(io: io, fd: baseFD, path: basePath)
                }
            }
            var containers: [UInt32: LiveContainer] = [:]
            for entry in meta.containers {
                let path = ContainerFiles.path(directory: directory, name: meta.containerNames[entry.physicalID], physicalID: entry.physicalID)
                let fd: Int32
                do {
                    fd = try ContainerFiles.open(
                        io: io, path: path, logID: meta.logID, physicalID: entry.physicalID, size: meta.containerSize, readOnly: readOnly)
                } catch let e as LogError where e.code == .notFound && readOnly && mayRetry {
                    // A live writer removed it after the base file was read (the base file first stops naming
                    // it, then the file is deleted): start over with the base file as it is now.
                    if try BaseFile.readNewest(io: io, fd: baseFD, path: basePath).0.generation != meta.generation { throw BaseFileChanged() }
                    throw e
                }
                opened.append(fd)
                var live = LiveContainer(
                    physical: entry.physicalID, fd: fd, logical: entry.state.holdsData ? entry.logicalID : 0, endOffset: entry.endOffset,
                    path: path)
                live.pendingDelete = entry.state == .pendingDelete
                live.pendingArchive = entry.state == .pendingArchive
                containers[entry.physicalID] = live
            }
            let maxRaw = max(Int(meta.blockSize) - BlockHeader.size, RecordHeader.footprint(dataLength: Int(meta.maxRecordSize)))
            let scanner = RecoveryScanner(
                io: io, directory: directory, meta: meta, containers: containers, mode: options.recovery, maxRawLength: maxRaw,
                readOnly: readOnly, isCancelled: options.isCancelled)
            try scanner.checkCancelled()
            var recovered = try scanner.scan()
            if let newer = recovered.newerHistory {
                // A read-only open races the writer, which may have started an epoch or switched containers
                // since the base file was read; then the base file has changed, and the open starts over.
                if readOnly, mayRetry, try BaseFile.readNewest(io: io, fd: baseFD, path: basePath).0.generation != meta.generation {
                    throw BaseFileChanged()
                }
                guard options.recovery == .pointInTime else { throw newer }
                recovered.report.corruption = newer
            }
            // A damaged base slot is an anomaly; so is a container switch the base file missed, except
            // for a read-only open of a live log, whose writer may switch after the base file was read.
            let anomalies = notes + (readOnly ? [] : recovered.report.metadataNotes)
            recovered.report.metadataNotes = notes + recovered.report.metadataNotes
            if options.recovery == .strict, !anomalies.isEmpty {
                throw LogError(.corrupt, "base file anomaly (strict recovery): \(anomalies.joined(separator: "; "))", path: basePath)
            }
            for sw in recovered.switches {
                sw.apply(to: &meta)
                for (p, c) in containers where c.logical == sw.closed { containers[p]?.endOffset = sw.endOffset }
                containers[sw.physical]?.logical = sw.closed + 1
                containers[sw.physical]?.endOffset = 0
            }
            let baseFile = readOnly ? nil : BaseFile(io: io, path: basePath, fd: baseFD)
            // A writable session starts a new epoch (u32) and counts base-file updates (u64). A base file may
            // hold their last values; the increments below trapped. Such a log can still be read.
            if baseFile != nil, meta.epoch == .max || meta.generation >= UInt64.max / 2 {
                throw LogError(
                    .logFull, "the base file's epoch \(meta.epoch) or generation \(meta.generation) has no successor: open the log read-only",
                    path: basePath)
            }
            if let baseFile {
                // What was recovered is made durable before the base file says so, then a new epoch starts.
                if let tail = containers.values.first(where: { $0.logical == recovered.end.container }) {
                    // A dropped torn block is overwritten with zeros, so later opens (strict ones too) see a
                    // clean end instead of meeting the same torn block again.
                    if recovered.report.tornTail != nil {
                        let sector = [UInt8](repeating: 0, count: Format.sectorSize)
                        try io.writeAll(tail.fd, sector, at: recovered.end.blockOffset)
                    }
                    // Written back and synced: what the page cache holds may be a failed writeback's.
                    try RecoveredTail.makeDurable(io: io, fd: tail.fd, meta: meta, recovered: recovered)
                }
                meta.generation += 1
                meta.epoch += 1
                meta.flags = 0
                meta.durableWatermark = max(meta.durableWatermark, recovered.lastLSN)
                try baseFile.write(meta)
            }
            let core = LogCore(
                io: io, directory: directory, meta: meta, baseFile: baseFile, baseFD: baseFD, containers: containers, recovered: recovered,
                options: options)
            ownedByCore = true
            if !readOnly {
                core.lock.withLock { core.refreshAppendHintLocked() }
                // The system's limit on threads reached: a typed error, not a trap. The core closes the files
                // (and so drops the writer lock) as it goes; what recovery made durable stays so.
                guard core.startWriter() else {
                    throw LogError(.io, "cannot start the log's writer thread: the system refused a new thread (its limit on threads or memory)", path: directory)
                }
            }
            return LogStore(core: core)
        } catch {
            if !ownedByCore {
                for fd in opened { io.close(fd) }
                io.close(baseFD)
            }
            throw error
        }
    }

    /// Takes the writer lock, retrying for up to 250 ms. A process that spawns a child (fork + exec)
    /// while it has a log open lends the child its descriptors until the exec closes them (O_CLOEXEC
    /// acts only at exec), so for a moment after that process closes the log the lock can still look
    /// held. A real second writer holds it far longer than the retry window. `isCancelled` is asked
    /// between attempts: a terminate racing an open of a log another process holds does not wait out
    /// the window.
    private static func lockRidingOutInheritedDescriptors(io: any FileIO, fd: Int32, isCancelled: (@Sendable () -> Bool)?) throws -> Bool {
        let deadline = monotonicNanos() + 250_000_000
        while true {
            if try io.tryLockExclusive(fd) { return true }
            if let isCancelled, isCancelled() { throw LogError(.terminated, "the open was cancelled while waiting for the log's lock") }
            if monotonicNanos() >= deadline { return false }
            usleep(5_000)
        }
    }

    // MARK: Appending and flushing

    /// Appends a record and returns its LSN. The record is in memory until a flush covers it.
    ///
    /// Normally this takes the log's lock, copies the record and returns: no system call, no waiting.
    /// It waits in two cases only: back-pressure (more than `maxDirtyBytes` sealed and not yet written:
    /// until the writer thread catches up), and a full log (it makes the log durable, grows it within
    /// policy, or calls the tail-pinned handlers, which write restart areas). The transaction manager's
    /// async commit and the KV store's handlers it triggers check a hint first and append off Swift's
    /// cooperative pool when the log is near either case (docs/TRANSACTIONS.md, "Commits and Swift's
    /// cooperative pool"); other code on the pool that may meet either should append off the pool too,
    /// or size the log and its dirty-byte limit to avoid them.
    ///
    /// - Parameters:
    ///   - bytes: the record's data, copied before this returns.
    ///   - previous: client-defined link to an earlier record (`LSN.invalid` ends the chain); an LSN
    ///     beyond the log's last record is `invalidArgument`.
    ///   - undoNext: client-defined link for undo processing (`LSN.invalid` ends the chain); likewise.
    /// - Throws: `invalidArgument` for a record over ``maxRecordSize`` or a link beyond the last record;
    ///   `logFull` when no container is free, or when the record (with the rest of the current container
    ///   it would leave unused if it moves to the next one) would take space reserved with
    ///   ``LogStream/reserve(recordSizes:)``, and in either case growing the log within policy and the
    ///   tail-pinned handlers did not make room (also when auto-grow could not create or name a new
    ///   container: its message says why); `failed` after an I/O error; `closed`; `readOnly`.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer, previous: LSN = .invalid, undoNext: LSN = .invalid) throws -> LSN {
        try core.append(bytes, type: .data, stream: 0, previous: previous, undoNext: undoNext)
    }

    /// Appends a record given as a byte array.
    @discardableResult
    public func append(_ bytes: [UInt8], previous: LSN = .invalid, undoNext: LSN = .invalid) throws -> LSN {
        try bytes.withUnsafeBytes { try core.append($0, type: .data, stream: 0, previous: previous, undoNext: undoNext) }
    }

    /// Blocks the calling thread until every record at or below `lsn` is durable.
    /// From async code, use the `async` overload, which never blocks a thread.
    ///
    /// On a read-only log it returns at once for an LSN at or below ``durableLSN`` and throws `readOnly`
    /// for one above (only its writer makes records durable).
    @available(*, noasync, message: "use the async flush(upTo:)")
    public func flush(upTo lsn: LSN) throws { try core.flush(upTo: lsn) }

    /// Returns once every record at or below `lsn` is durable. Suspends; never blocks a thread.
    /// On a read-only log, `readOnly` for an LSN above ``durableLSN``.
    public func flush(upTo lsn: LSN) async throws { try await core.flushAsync(upTo: lsn) }

    /// Calls `completion` once every record at or below `lsn` is durable (with nil), or with the error
    /// that says it will not be (`failed`, `closed`, `invalidArgument` for an LSN beyond the log, or
    /// `readOnly` for an LSN above ``durableLSN`` on a read-only log).
    /// After ``close()``, an LSN the log made durable (close flushes everything) completes with nil.
    ///
    /// The completion form of `flush(upTo:)`, for code that must not block and would otherwise create a
    /// task per flush: it never blocks and creates no task. Completions run on the log's completion
    /// queue (a serial dispatch queue, never the writer thread or the calling thread), one batch's worth
    /// per dispatch, in the order their targets became durable. Keep them short: they run one after
    /// another. They may take locks and call into the log.
    public func whenDurable(_ lsn: LSN, _ completion: @escaping @Sendable (LogError?) -> Void) {
        core.whenDurable(lsn, completion)
    }

    /// Blocks until everything appended so far is durable.
    @available(*, noasync, message: "use the async flush()")
    public func flush() throws { try core.flush(upTo: lastLSN) }

    /// Returns once everything appended so far is durable.
    public func flush() async throws { try await core.flushAsync(upTo: lastLSN) }

    /// The last LSN appended (null if none).
    public var lastLSN: LSN { core.lock.withLock { core.state.lastLSN } }

    /// Every record at or below this LSN is durable.
    ///
    /// On a read-only log (which cannot see its writer's fdatasync), what it can prove: the base file's
    /// durable watermark and the highest durable hint of the blocks it read, never above ``lastLSN``. It may
    /// be below ``lastLSN`` even when the writer has flushed everything (a block's hint is the durable LSN
    /// when the block was sealed); after the writer's clean close, ``refresh()`` brings it to ``lastLSN``.
    public var durableLSN: LSN { core.lock.withLock { core.state.durableLSN } }

    /// Whether an append may wait now (back-pressure or a full log; see `append`):
    /// one atomic load, no lock. Set with a margin before either case is reached, so an async caller
    /// that reads false and appends at once does not wait unless other threads appended more than the
    /// margin (half of `maxDirtyBytes` or of a container, at least four blocks) in between; a false
    /// "may wait" only costs such a caller a thread hop.
    package var appendMayWait: Bool { core.appendMayWait.load(ordering: .relaxed) }

    /// Records below this LSN are no longer needed and may be recycled.
    public var baseLSN: LSN { core.lock.withLock { core.state.baseLSN } }

    /// The lowest LSN the log keeps readable: ``baseLSN``, or the lowest archive tail below it (records
    /// from an archive tail on are kept until archived, and ``read(_:)``, the chains and cursors reach
    /// them). Null when neither is set.
    public var oldestReadableLSN: LSN { core.lock.withLock { core.readFloorLocked() } }

    /// The largest record this log accepts.
    public var maxRecordSize: Int { core.maxRecordSize }

    /// What opening the log found.
    public var recoveryReport: RecoveryReport { core.recoveryReport }

    /// True when the log has failed after an I/O error and acknowledges nothing more.
    public var isFailed: Bool { core.lock.withLock { core.state.failed != nil } }

    /// True when the log was opened read-only (it takes no lock and writes nothing).
    public var isReadOnly: Bool { core.readOnly }

    /// The error that put the log in its failed state, or nil while it is healthy.
    public var failure: LogError? { core.lock.withLock { core.state.failed } }

    /// Registers a handler called once when the log enters its failed state (after a write, sync or
    /// base-file error). It runs on a background queue, never on the failing thread. If the log has
    /// already failed, it is called at once (also on a background queue).
    public func onFailure(_ handler: @escaping @Sendable (LogError) -> Void) {
        let already: LogError? = core.lock.withLock {
            if let f = core.state.failed { return f }
            core.failureHandlers.append(handler)
            return nil
        }
        if let already { DispatchQueue.global().async { handler(already) } }
    }

    /// Registers a handler called once when the log has closed: by the first ``close()`` as it ends
    /// (whatever it throws, before it or a second close waiting for it returns), on the closing thread,
    /// with no lock of the log held; at once if that is over already.
    /// For a transaction manager on this log, which must stop waiting for participants that can no
    /// longer log their answers.
    package func onClose(_ handler: @escaping @Sendable () -> Void) {
        let closed: Bool = core.lock.withLock {
            if core.closeHandlersTaken { return true }
            core.closeHandlers.append(handler)
            return false
        }
        if closed { handler() }
    }

    // MARK: Reading

    /// The record at exactly `lsn`.
    ///
    /// - Throws: `notFound` for an LSN below the base and below every archive tail (the records from the
    ///   lowest archive tail on are kept until archived, and stay readable), or one that names no record
    ///   (no block starts there, or the block has fewer records); `corrupt` for a damaged block, also one whose header is
    ///   gone where the blocks before it say a block starts; `invalidArgument` beyond the end; `closed`.
    public func read(_ lsn: LSN) throws -> LogRecord { try core.read(lsn) }

    /// A cursor over records in LSN order, starting at `lsn` (which must be a record's LSN), or at the
    /// base of the log when `lsn` is null.
    public func records(from lsn: LSN = .null) throws -> LogCursor {
        try core.checkOpen()
        let start: LSN
        if lsn == .null {
            start = try firstLSN()
        } else {
            _ = try read(lsn)
            start = lsn
        }
        return LogCursor(core: core, from: start)
    }

    /// The records along the previous-LSN chain, starting with `lsn` itself.
    public func previousChain(from lsn: LSN) -> LogChain { LogChain(read: core.read, upcoming: lsn, link: \.previous) }

    /// The records along the undo-next chain, starting with `lsn` itself.
    public func undoNextChain(from lsn: LSN) -> LogChain { LogChain(read: core.read, upcoming: lsn, link: \.undoNext) }

    /// The LSN of the first readable record, at or after the base.
    func firstLSN() throws -> LSN {
        let (base, oldest) = core.lock.withLock { () -> (LSN, UInt32) in
            (core.state.baseLSN, core.state.logicalToPhysical.keys.min() ?? 1)
        }
        if base != .null { return base }
        return LSN(uncheckedContainer: oldest, blockOffset: UInt64(Format.containerDataStart), slot: 0)
    }

    // MARK: Containers and space

    /// Adds a container (created, zero-filled and synced before the base file names it).
    ///
    /// An explicit add is not bound by the space policy (`LogPolicy.maxContainers` and
    /// `LogPolicy.maxSizeBytes` limit auto-grow only), just by the format's 1024 containers.
    ///
    /// - Throws: `invalidArgument` when the log already has (or is adding) 1024 containers, `readOnly`
    ///   for a read-only log, and the error of creating the file or writing the base file.
    @discardableResult
    public func addContainer() throws -> UInt32 { try core.addContainers(1)[0] }

    /// Removes a container. A free one is removed (its file deleted) at once. One holding records is
    /// marked pending delete and deleted, instead of recycled, once every base has passed it; if the log
    /// has moved records into it that are not written yet, they are flushed first.
    ///
    /// Removing a container already pending delete does nothing.
    ///
    /// Once the base file no longer names a free container the removal stands: a file that cannot be
    /// deleted is left as an orphan (``strayFiles()`` lists it, no open reads it) and the call returns;
    /// a directory sync that fails after the delete fails the log (`failed`), as every sync error does.
    ///
    /// - Throws: `notFound` for an unknown id; `invalidArgument` for the container being written, or
    ///   when fewer than two containers would be left (those pending delete do not count); `logFull` for
    ///   a free container that outstanding reservations (``LogStream/reserve(recordSizes:)``) need;
    ///   `failed` or `io` from that flush, `failed` after a base-file or directory sync error; `closed`;
    ///   `readOnly`.
    public func removeContainer(_ physicalID: UInt32) throws { try core.removeContainer(physicalID) }

    /// Moves the default stream's base forward; containers that every stream's base (and the archive
    /// tail) have passed become free for reuse. `lsn` must be a record's LSN (``LogStream/advanceBase(to:)``
    /// lists the errors).
    public func advanceBase(to lsn: LSN) throws { try core.advanceBase(stream: 0, to: lsn) }

    /// A snapshot of the log's layout, space, streams, policy and statistics.
    public func info() -> LogInfo { core.info() }

    /// Catches a read-only log up with what its writer (another process, or another instance) has written
    /// since the open or the last refresh, and returns whether anything moved (the end of the log, or the
    /// base file: containers, streams, bases, restart areas, archive tails, policy). A log opened for writing
    /// is always current: it returns false.
    ///
    /// A read-only log otherwise sees the log as the open found it. This costs what a reopen would without
    /// its rescan: the end-of-log scan goes on from where the open (or the last refresh) stopped, reading
    /// only blocks written since, and the base file is read again (opened at the log's path, then one read) and, when its generation
    /// changed, put in force: containers added are opened, those the base file no longer names are closed,
    /// and records in containers the writer recycled are `notFound` (below ``baseLSN``), as after a reopen.
    /// When the writer has moved to a later container than this log's end, or a writer opened the log since
    /// (a new epoch), the scan starts where the base file says, as an open's does; after a new epoch the last
    /// block this log read is also read again, to check that the log still holds it, and each container it
    /// keeps open is checked to be the file at its path still. A block the writer is still writing is read
    /// again after a moment; one that stays incomplete ends the log for now (a later refresh reads it once it is complete), in every
    /// recovery mode (`strict` too: a refresh cannot tell it from a torn block; a reopen classifies it).
    /// Unlike an open, a refresh does not look past the end for blocks that claim to be durable or newer than the base
    /// file, nor in the free containers for a container switch the base file does not record (the writer records
    /// each in the base file before it writes there): a refresh that finds nothing new reads the base file and at
    /// most the one block at this log's end. Cursors made before a refresh go on to the records it found. Blocks the calling thread for the
    /// reads: call it off Swift's cooperative pool for a large catch-up.
    ///
    /// All or nothing: when it throws, the log is as it was before the call.
    ///
    /// - Throws: `invalidState` when the log cannot be caught up in place (the base file now describes
    ///   another log, overwritten in place or created at the log's path; the base file at the path is
    ///   another file than the open's, as when a copy of the log's directory is moved there, or after a new
    ///   epoch a container file at its path is; or a log that ends before the records this one already read,
    ///   as a base file restored from an older copy would, or whose writer reopened it after a crash lost
    ///   blocks this log had read, and wrote others there):
    ///   reopen it; `corrupt` where the blocks are damaged below a point the base file says is durable;
    ///   `notFound` when the base file is gone (the log was removed) or for a container the base file names
    ///   that is missing; `io`; `closed`.
    @discardableResult
    public func refresh() throws -> Bool { try core.refresh() }

    // MARK: Streams

    /// Creates a named stream (recorded in the base file before this returns).
    ///
    /// - Throws: `invalidArgument` for a name that is empty, longer than 255 bytes, holds NUL or is
    ///   taken, after 4095 streams over the log's lifetime, and when the stream table would no longer fit
    ///   a base-file slot (about 880 streams with 255-byte names; docs/format/base-file.md, "Limits"):
    ///   the stream is then not created and the log goes on as before.
    public func createStream(_ name: String) throws -> LogStream {
        LogStream(core: core, id: try core.createStream(name), name: name)
    }

    /// Opens an existing named stream.
    public func openStream(_ name: String) throws -> LogStream {
        LogStream(core: core, id: try core.streamID(named: name), name: name)
    }

    /// Opens a stream, creating it if it does not exist. Concurrent calls with one name all get the same
    /// stream: one creates it, the others wait until it is durable and open it.
    public func stream(_ name: String) throws -> LogStream {
        LogStream(core: core, id: try core.createStream(name, openIfExists: true), name: name)
    }

    /// The log's default stream (id 0), which `append` on the log itself writes to.
    public var defaultStream: LogStream { LogStream(core: core, id: 0, name: "") }

    /// Every stream, the default one first.
    public func streams() -> [StreamInfo] { core.allStreams() }

    /// Deletes a named stream: it stops pinning the log, and its records are no longer readable through it.
    public func deleteStream(_ name: String) throws { try core.deleteStream(name) }

    // MARK: Policy and archive

    /// The persisted space policy.
    public var policy: LogPolicy { core.lock.withLock { core.state.policy } }

    /// Changes the space policy and persists it in the base file. When the log has fewer containers than
    /// the new `LogPolicy.minContainers` (not counting those pending delete), the missing ones are added
    /// first (named with the new prefix). A lower `LogPolicy.maxContainers` removes no container; an
    /// auto-grow already preparing its containers names only as many as the new maximum allows.
    ///
    /// All or nothing for the policy: when this throws, the old policy is still in force, in memory and
    /// in the base file. Containers already added for the new minimum stay (as after ``addContainer()``)
    /// if saving the policy itself fails after them.
    ///
    /// - Throws: `invalidArgument` for a policy that does not validate, or whose container prefix starts
    ///   with `txlog.base`; the error of adding the containers the new minimum needs (`io` when a file
    ///   cannot be created, `invalidArgument` beyond 1024 containers); `readOnly`; `closed`; `failed`.
    public func setPolicy(_ policy: LogPolicy) throws { try core.setPolicy(policy) }

    /// Sets the log-wide archive tail (null: the log is not archived): records from it on are kept until
    /// archived, and stay readable once the bases have passed them (``read(_:)``, the chains, cursors
    /// started there), as CLFS keeps the records between the archive tail and the base readable. Only durable records can be archived, and only records the log still holds: the tail
    /// must be a record's LSN (of any stream) in the log's active region, CLFS's
    /// [min(base, archive tails), last].
    ///
    /// - Throws: `invalidArgument` for an LSN beyond the durable LSN (flush first), one that names no
    ///   record, or one below both the log's base and every archive tail (records already released, or in
    ///   a container already recycled); `readOnly`; `closed`; `failed`.
    public func setArchiveTail(_ lsn: LSN) throws { try core.setArchiveTail(stream: nil, to: lsn) }

    /// Container byte ranges from the archive tail up to the base, for a backup tool.
    public func archiveExtents() -> [ArchiveExtent] { core.archiveExtents() }

    /// Flushes everything, stops the writer, records a clean shutdown and releases the lock. Waits for
    /// reads and block scans in progress, and for container adds and removals and metadata changes (a
    /// stream created or deleted, a base, an archive tail, a restart area, a policy) already under way,
    /// which complete; ones that start later throw `closed`. So a call racing `close()` either succeeds,
    /// its change durable, or throws `closed` having changed nothing. A second `close()` (concurrent or
    /// later) waits for the first and throws what it found (`failed` if the final flush failed, or the
    /// directory sync after the unlink of a container recycled away, which close waits for); calls
    /// made after it throw `closed` (``whenDurable(_:_:)`` of an LSN the close made durable completes
    /// with nil). Tail-pinned handlers (``LogStream/onTailPinned(_:)``) being called when it begins are
    /// waited for, once their calls into the log throw `closed`; none is called after that, so none runs
    /// after `close()` returns. A handler must therefore not wait for the thread that closes the log (it
    /// may close the log itself: a handler's `close()` while another is under way returns at once, as
    /// that one may be waiting for the handler, and reports what the log found so far).
    public func close() throws { try core.close() }
}

/// Follows a chain of LSNs (previous or undo-next) until it ends.
public struct LogChain: Sendable {
    let read: @Sendable (LSN) throws -> LogRecord
    var upcoming: LSN
    let link: KeyPath<LogRecord, LSN> & Sendable

    /// The next record on the chain, or nil when the chain ends (`LSN.invalid` or `LSN.null`).
    public mutating func next() throws -> LogRecord? {
        guard upcoming.isValid else { return nil }
        let record = try read(upcoming)
        let following = record[keyPath: link]
        if following.isValid, following >= record.lsn {
            throw LogError(.corrupt, "chain link from \(record.lsn) to \(following) does not go backwards", lsn: record.lsn)
        }
        upcoming = following
        return record
    }
}

/// The directory holding `path` ("." for a bare name).
package func parentDirectory(of path: String) -> String {
    var p = Substring(path)
    while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "." }
    return slash == p.startIndex ? "/" : String(p[..<slash])
}
