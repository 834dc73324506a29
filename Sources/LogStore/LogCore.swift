// The shared state of an open log. Split by concern: LogCore+Append (append and sealing),
// LogCore+Writer (group commit), LogCore+Read (reads and cursors), LogCore+Containers (metadata changes),
// LogCore+AddContainers and LogCore+RemoveContainers, Recovery (finding the end on open).

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import LogFormat
import Synchronization

/// A record that is queued for writing (sealed) or being written.
struct SealedBlock {
    /// header + stored payload + zero padding; `diskLength` bytes are written.
    var buffer: UnsafeMutableRawBufferPointer
    var diskLength: Int
    var logical: UInt32
    var physical: UInt32
    var offset: UInt64
    var firstLSN: LSN
    var lastLSN: LSN
    var crc: UInt32
    /// True when `buffer` came from the pool (normal size); jumbo buffers are freed after writing.
    var pooled: Bool
}

/// Where the write pipeline stands: the containers written since their last sync, and the chain CRC
/// and last LSN of the last block written.
struct WriteCursor {
    var unsynced: Set<UInt32>
    var lastCRC: UInt32
    var lastLSN: LSN
    /// Scratch list of one write's block buffers, kept with its capacity: no array per write.
    var buffers: [UnsafeRawBufferPointer] = []
}

/// The block records are being appended to.
struct OpenBlock {
    var payload: UnsafeMutableRawBufferPointer
    var capacity: Int
    var used = 0
    var count = 0
    var streamMask: UInt64 = 0
    var logical: UInt32 = 0
    var physical: UInt32 = 0
    var offset: UInt64 = 0

    var position: LSN { LSN(uncheckedContainer: logical, blockOffset: offset, slot: 0) }
}

/// An asynchronous flush waiting for its target to become durable: a suspended task, or a completion
/// handler (`whenDurable`). (Threads in a synchronous flush sleep on the `FlushGate` instead.)
enum FlushWaiter {
    case task(CheckedContinuation<Void, any Error>)
    case handler(@Sendable (LogError?) -> Void)
}

/// Names the log whose completion queue the current thread is running (so that log's `close()`, called
/// from one of its own completions, does not wait for itself; closing another log still waits).
let onCompletionQueue = DispatchSpecificKey<ObjectIdentifier>()

/// Flush statistics.
public struct FlushStatistics: Sendable, Equatable {
    /// fdatasync/fsync calls on containers.
    public var syncs: UInt64 = 0
    /// Bytes written to containers.
    public var bytesWritten: UInt64 = 0
    /// Blocks written.
    public var blocksWritten: UInt64 = 0
    /// Write batches.
    public var batches: UInt64 = 0
    /// Flush requests (calls to flush that had to wait).
    public var flushRequests: UInt64 = 0
    /// Base-file updates.
    public var baseWrites: UInt64 = 0
    /// Histogram of blocks per batch: bucket i counts batches of [2^i, 2^(i+1)) blocks.
    public var batchBlocksHistogram: [UInt64] = Array(repeating: 0, count: 12)
}

struct LiveContainer {
    var physical: UInt32
    var fd: Int32
    var logical: UInt32  // 0 when free
    var endOffset: UInt64  // for closed containers
    var path: String
    /// Removal was asked while it held data; it is deleted instead of recycled.
    var pendingDelete = false
    /// Below every base but above an archive tail.
    var pendingArchive = false
}

final class LogCore: @unchecked Sendable {
    // Fixed at open.
    let io: any FileIO
    /// Containers deleted by recycling are unlinked here, off the thread that updated the base file
    /// (often the writer thread, mid-batch); `close()` waits for `deletions`.
    let deletionQueue = DispatchQueue(label: "txlog.container-deletion")
    let deletions = DispatchGroup()
    /// Runs `whenDurable` completions, in the order their batches became durable: never on the writer
    /// thread, which a completion waiting for a lock (held by an appender waiting for the writer) would
    /// stall.
    let completions = DispatchQueue(label: "txlog.flush-completions")
    /// Calls the tail-pinned handlers ahead of a full log (`callPinnersAheadIfLowLocked`), off the appending
    /// thread, which may hold a lock of the handler's owner.
    let pinnedAheadQueue = DispatchQueue(label: "txlog.tail-pinned-ahead")
    let directory: String
    let logID: LogID
    let containerSize: UInt64
    /// Where blocks must end in a container (`Format.containerDataEnd(size:)`).
    let dataEnd: UInt64
    let blockSize: Int
    let maxRecordSize: Int
    let maxRawLength: Int
    let codec: Codec
    let epoch: UInt32
    /// The newest epoch whose blocks reads accept: `epoch`, or for a read-only log, the epoch of the base
    /// file it last read (``LogStore/refresh()`` moves it when the writer starts a new session).
    let viewEpoch: Atomic<UInt32>
    var readEpoch: UInt32 { viewEpoch.load(ordering: .acquiring) }
    let readOnly: Bool
    let options: LogOpenOptions
    let baseFile: BaseFile?
    /// The base file descriptor (also the lock holder for a writable log).
    let baseFD: Int32
    let recoveryReport: RecoveryReport

    /// Guards `state`.
    let lock = Lock()
    /// Wakes the background writer (with `lock`).
    let workCondition: Condition
    /// Wakes appenders waiting for back-pressure to ease (with `lock`).
    let spaceCondition: Condition
    /// Broadcast when the last read in progress on a container descriptor, or the last read of all, ends
    /// (with `lock`).
    let readsDone: Condition
    /// Broadcast when a stream creation ends, durable or undone (with `lock`).
    let streamCreated: Condition
    /// Bumped by every stream deletion, so a stream's cursor checks that its stream still exists only
    /// when one may have been deleted (a lock per record otherwise).
    let streamDeletions = Atomic<UInt64>(0)
    /// Set with `state.closed` (and when the files are released): read without the lock by a cursor before
    /// it returns a record of the block it holds, so that after close() every read throws `closed`.
    let closedForReads = Atomic<Bool>(false)
    /// Set while an append may wait (``refreshAppendHintLocked()``): read without the lock by async
    /// callers that then append off Swift's cooperative pool (`LogStore.appendMayWait`).
    let appendMayWait = Atomic<Bool>(false)
    /// Serialises base-file writes and guards `meta`.
    let metaLock = Lock()
    /// Tests only: called by a base-file update after it let go of `metaLock`, with the number of
    /// containers it deleted, before their unlinking is queued.
    var afterMetaUpdateForTesting: (@Sendable (Int) -> Void)?
    /// Tests only: called by a metadata change counted by `beginMetaChangeLocked` after it changed the
    /// in-memory state, before its base-file update.
    var beforeMetaChangeWrittenForTesting: (@Sendable () -> Void)?
    /// Tests only: called by `advanceBase` after its checks and flush, before it takes `metaLock` to move
    /// the base.
    var beforeBaseMovesForTesting: (@Sendable () -> Void)?
    /// Tests only: called (with `lock` held) each time an append waits for back-pressure to ease.
    var waitingForSpaceForTesting: (@Sendable () -> Void)?
    /// Tests only: called (with `lock` held) when something that closes container descriptors is about to
    /// wait for the reads in progress on them (`state.reads`).
    var waitingForReadsForTesting: (@Sendable () -> Void)?
    /// Tests only: called by a read of a sealed block not written yet, between copying its bytes (under
    /// `lock`) and decoding them.
    var decodingInMemoryBlockForTesting: (@Sendable () -> Void)?
    /// Tests only: called on `pinnedAheadQueue` with the target, before the tail-pinned handlers it calls
    /// ahead of a full log.
    var pinnersCalledAheadForTesting: (@Sendable (LSN) -> Void)?
    /// Tests only: true keeps the tail-pinned handlers to the log-full path, for tests of that path (set
    /// before the first append).
    var pinnersAheadDisabledForTesting = false
    /// Tests only: called by auto-grow once it has prepared its containers' files, before the base file
    /// names them.
    var beforeGrowthNamedForTesting: (@Sendable () -> Void)?
    /// Tests only: called by `writeRestartArea` after its checks, before it appends the restart record.
    var beforeRestartAppendedForTesting: (@Sendable () -> Void)?
    /// Tests only: called by an append (or a reservation) after the log-full path returned (it made room),
    /// before the retry.
    var afterLogFullHandledForTesting: (@Sendable () -> Void)?
    /// Tests only: called (with `lock` held) each time the free containers are counted (a walk of every
    /// container), which plain appends under a reservation must not do per record.
    var freeContainersCountedForTesting: (@Sendable () -> Void)?
    /// Tests only: called by auto-shrink with the container it chose, before it removes it.
    var beforeShrinkRemovesForTesting: (@Sendable (UInt32) -> Void)?
    /// Tests only: called on the deletion queue after an auto-shrink check `shrinkInBackground` queued.
    var shrankInBackgroundForTesting: (@Sendable () -> Void)?
    /// Tests only: called by close() when it is about to wait for operations under way.
    var closeWaitingForOperationsForTesting: (@Sendable () -> Void)?
    /// Tests only: called by close() when it is about to wait for tail-pinned handler calls in progress.
    var closeWaitingForHandlersForTesting: (@Sendable () -> Void)?
    let cache: BlockCache
    /// Where threads in a synchronous flush sleep until their batch is durable.
    let gate: FlushGate

    struct State {
        var open: OpenBlock
        /// The whole buffer the open block's records are written into, at `BlockHeader.size`: a pool
        /// buffer (block size) for a normal block, or a buffer of its own for a record larger than a
        /// block. A block stored uncompressed is sealed in place: its header goes in front of the
        /// records and this very buffer is queued for the writer, with no copy.
        var openBuffer: UnsafeMutableRawBufferPointer
        var openBufferPooled = true
        var sealed: [SealedBlock] = []
        var pool: [UnsafeMutableRawBufferPointer] = []
        /// Memory held by the sealed blocks not written yet (their buffers, whatever their length on disk):
        /// what `maxDirtyBytes` bounds.
        var dirtyBytes = 0
        var chainCRC: UInt32
        var lastLSN: LSN
        var writtenLSN: LSN
        var durableLSN: LSN
        /// Written and synced, possibly ahead of `durableLSN` while the writer is mid-batch.
        var syncedLSN: LSN = .null
        var flushTarget: LSN = .null
        /// True while one thread (the writer thread, or a flusher writing inline) owns the write
        /// pipeline: takes a batch, writes and syncs it. At most one owner at a time.
        var writing = false
        /// True while the writer thread is parked with nothing to do. A synchronous flush writes inline
        /// only then: while the writer thread is busy (under concurrent load) flushers queue for its next
        /// batch, which keeps batches large.
        var writerIdle = false
        /// The write pipeline's own position; read and replaced only by the owner of `writing`.
        var cursor = WriteCursor(unsynced: [], lastCRC: 0, lastLSN: .null)
        var waiters: [(target: LSN, waiter: FlushWaiter)] = []  // asynchronous flushes only
        var failed: LogError?
        var closed = false
        var stopping = false
        var containers: [UInt32: LiveContainer] = [:]  // by physical id
        var logicalToPhysical: [UInt32: UInt32] = [:]
        var baseLSN: LSN
        var stats = FlushStatistics()
        var filesReleased = false
        /// Per-stream fields touched by every append, indexed by stream id.
        var hot: [StreamHot] = []
        /// The rest of each stream's state.
        var cold: [UInt16: StreamCold] = [:]
        var streamIDs: [String: UInt16] = [:]
        /// Streams being created: in `hot`/`cold` (so the base-file update writes them) but not in
        /// `streamIDs` until that update is durable, so nothing can open and write one that a crash
        /// would forget (and whose id the next create would reuse).
        var pendingStreamNames: Set<String> = []
        var nextStreamID: UInt16 = 1
        /// Sum of every stream's reserved bytes.
        var reservedTotal = 0
        /// Log-wide archive tail (null: not archived).
        var archiveTail: LSN = .null
        var policy: LogPolicy = .default
        /// Bumped by every space change (recycling, growth), so a log-full retry knows something moved.
        var spaceGeneration: UInt64 = 0
        /// The largest worst-case cost of one reserved record while any reservation is outstanding.
        var maxReservedCost = 0
        /// Physical ids handed out (including to containers being created).
        var nextPhysicalID: UInt32 = 0
        var containersBeingAdded = 0
        /// Free containers out of the live table while their removal is written; close() waits for them.
        var containersBeingRemoved = 0
        /// Appends (and reservations) in the log-full path (`handleLogFull`), each counted until its retry
        /// took the room or it gave up (`LogFullProgress.holdsMakingRoom`): auto-shrink waits for none.
        var makingRoom = 0
        /// Auto-shrink found the log above its percentage but held back for a while (an append in the
        /// log-full path, or reservations needing the free containers): checked again, in the background,
        /// once that ends (`takeDeferredShrinkLocked`), not only at the next trigger, which an idle log never has.
        var shrinkDeferred = false
        /// A call of the tail-pinned handlers ahead of a full log is queued on `pinnedAheadQueue` and has
        /// not started (see `callPinnersAheadIfLowLocked`).
        var pinnersAheadQueued = false
        /// Threads calling tail-pinned handlers now (the log-full path's, and the call ahead of a full log
        /// on `pinnedAheadQueue`): close() waits for them, so no handler runs after it returned. None starts
        /// once close() has begun (`stopping`).
        var handlerCallsRunning = 0
        /// The target of the last call of the tail-pinned handlers ahead of a full log: the next call waits
        /// for a different one (the oldest container recycled), so handlers that cannot move are asked once.
        var pinnersAheadTarget = LSN.null
        /// Metadata changes made in memory whose base-file update has not ended; close() waits for them
        /// (`beginMetaChangeLocked`).
        var metaChangesInFlight = 0
        /// The container the persisted base file says recovery starts in.
        var persistedTailContainer: UInt32 = 0
        /// Reads in progress and the container descriptors they use: nothing closes a descriptor under one.
        var reads = ReadsInProgress()
        /// Set once the close() that began the shutdown has finished (files released).
        var closeFinished = false
    }
    /// Every access holds `lock`, so the dynamic exclusivity check is skipped (it costs on every append).
    @exclusivity(unchecked) var state: State

    /// Called once, off the failing thread, when the log enters its failed state; guarded by `lock`.
    var failureHandlers: [@Sendable (LogError) -> Void] = []
    /// Called once, on the closing thread, as ``close()`` ends (before a second close waiting for it
    /// returns); guarded by `lock`, like `closeHandlersTaken` (set once they are being called).
    var closeHandlers: [@Sendable () -> Void] = []
    var closeHandlersTaken = false

    /// The persisted (or being persisted) base record; guarded by `metaLock`.
    var meta: BaseRecord
    /// A read-only log's catch-up: the first and last record it found of streams its stream table did not
    /// have yet (created by the writer after the base file it read), kept until a refresh reads a base file
    /// that names them; guarded by `metaLock`.
    var unseenStreams: [UInt16: (first: LSN, last: LSN)] = [:]
    var writerDone = DispatchSemaphore(value: 0)

    init(io: any FileIO, directory: String, meta: BaseRecord, baseFile: BaseFile?, baseFD: Int32, containers: [UInt32: LiveContainer],
         recovered: RecoveryResult, options: LogOpenOptions) {
        self.io = io
        self.directory = directory
        self.logID = meta.logID
        self.containerSize = meta.containerSize
        self.dataEnd = Format.containerDataEnd(size: meta.containerSize)
        self.blockSize = Int(meta.blockSize)
        self.maxRecordSize = Int(meta.maxRecordSize)
        self.maxRawLength = max(Int(meta.blockSize) - BlockHeader.size, RecordHeader.footprint(dataLength: Int(meta.maxRecordSize)))
        self.codec = options.codec ?? meta.codec
        self.epoch = meta.epoch
        self.viewEpoch = Atomic(meta.epoch)
        self.readOnly = options.readOnly || options.recovery == .pointInTime
        self.options = options
        self.baseFile = baseFile
        self.baseFD = baseFD
        self.meta = meta
        self.recoveryReport = recovered.report
        self.cache = BlockCache(capacityBytes: options.readCacheBytes)
        self.workCondition = Condition(lock)
        self.spaceCondition = Condition(lock)
        self.readsDone = Condition(lock)
        self.streamCreated = Condition(lock)
        // A writable open made everything it recovered durable (Recovery, step 7). A read-only one cannot see
        // whether a live writer's fdatasync of the blocks it read has returned.
        let durable = readOnly ? Self.provenDurable(meta: meta, found: recovered) : recovered.lastLSN
        self.gate = FlushGate(durable: durable)

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.pooledBufferSize(blockSize: Int(meta.blockSize)), alignment: 4096)
        var open = OpenBlock(payload: Self.payloadView(of: buffer, count: Int(meta.blockSize) - BlockHeader.size), capacity: 0)
        open.logical = recovered.end.container
        open.offset = recovered.end.blockOffset
        open.physical = containers.values.first { $0.logical == recovered.end.container }?.physical ?? 0
        state = State(
            open: open, openBuffer: buffer, chainCRC: recovered.chainCRC, lastLSN: recovered.lastLSN,
            writtenLSN: recovered.lastLSN, durableLSN: durable, baseLSN: meta.baseLSN)
        state.containers = containers
        for c in containers.values where c.logical != 0 { state.logicalToPhysical[c.logical] = c.physical }
        state.open.capacity = openCapacity(offset: open.offset)
        state.archiveTail = meta.archiveTail
        state.nextPhysicalID = meta.nextPhysicalID
        state.persistedTailContainer = meta.scanStart.container
        state.policy = meta.policy
        loadStreams(meta: meta, recovered: recovered)
        completions.setSpecific(key: onCompletionQueue, value: ObjectIdentifier(self))
    }

    deinit {
        state.openBuffer.deallocate()
        for b in state.sealed { b.buffer.deallocate() }
        for b in state.pool { b.deallocate() }
        releaseFiles()
    }

    /// Closes every file descriptor (which also drops the writer lock). Idempotent.
    func releaseFiles() {
        let fds: [Int32] = metaLock.withLock { lock.withLock {
            guard !state.filesReleased else { return [] }
            while state.reads.total > 0 { readsDone.wait() }
            state.filesReleased = true
            closedForReads.store(true, ordering: .releasing)
            return state.containers.values.map(\.fd) + [baseFD]
        } }
        for fd in fds where fd >= 0 { io.close(fd) }
    }

    /// What a read-only log knows is durable of what a scan found: the base file's durable watermark and the
    /// highest durable hint of the blocks scanned, never above the last record found (a point-in-time open
    /// may end below the watermark). The blocks after it may still be in a live writer's fdatasync.
    static func provenDurable(meta: BaseRecord, found: RecoveryResult) -> LSN {
        min(max(meta.durableWatermark, found.durableHint), found.lastLSN)
    }

    /// Payload bytes a normal block opened at `offset` may hold: bounded by the block size and by what is
    /// left in the container, so the block fits even if stored uncompressed.
    func openCapacity(offset: UInt64) -> Int {
        let left = dataEnd >= offset + UInt64(BlockHeader.size) ? dataEnd - offset - UInt64(BlockHeader.size) : 0
        return Int(min(UInt64(blockSize - BlockHeader.size), left))
    }

    /// Size of a pool buffer: a whole normal block, header included, in whole sectors.
    static func pooledBufferSize(blockSize: Int) -> Int { roundUp(blockSize, to: Format.sectorSize) }

    /// The records area of a block buffer: `count` bytes after the block header.
    static func payloadView(of buffer: UnsafeMutableRawBufferPointer, count: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: buffer[BlockHeader.size..<(BlockHeader.size + count)])
    }

    var logSalt: UInt64 { logID.salt }

    /// Throws `closed` once the log is closed (reads of a failed log still work).
    func checkOpen() throws {
        try lock.withLock { if state.closed || state.filesReleased { throw LogError(.closed, "the log is closed") } }
    }

    func checkUsable() throws {
        if let failed = state.failed { throw failed }
        if state.closed || state.stopping { throw LogError(.closed, "the log is closed") }
    }
}
