public import LogFormat

/// Parameters fixed when a log is created. They are stored in the base file.
public struct LogCreateOptions: Sendable {
    /// Bytes per container: a multiple of 512 KiB, from 512 KiB to 4 GiB. Default 64 MiB.
    public var containerSize: UInt64 = 64 * 1024 * 1024
    /// Containers to create: at least 2. Default 2.
    public var containerCount: Int = 2
    /// Target size of a block in bytes, header included: a multiple of 512 from 1 KiB to 16 MiB and at most
    /// the container's data area. Records larger than a block get a block of their own. Default 64 KiB.
    public var blockSize: Int = 64 * 1024
    /// Largest record accepted. Default 8 MiB; it is lowered to what one container can hold
    /// (`LogLimits.largestRecord(containerSize:)`, in LogFormat).
    public var maxRecordSize: Int = 8 * 1024 * 1024
    /// Default compression of sealed blocks. Default lz4.
    public var codec: Codec = .lz4

    /// The default options (2 containers of 64 MiB, 64 KiB blocks, lz4).
    public init() {}

    /// Options with the given layout and codec; the others keep their defaults.
    public init(containerSize: UInt64, containerCount: Int, blockSize: Int = 64 * 1024, codec: Codec = .lz4) {
        self.containerSize = containerSize
        self.containerCount = containerCount
        self.blockSize = blockSize
        self.codec = codec
    }

    func validate() throws {
        func bad(_ m: String) -> LogError { LogError(.invalidArgument, m) }
        guard containerSize >= Format.containerSizeUnit, containerSize <= Format.maxContainerSize,
            containerSize % Format.containerSizeUnit == 0
        else { throw bad("container size must be a multiple of 512 KiB between 512 KiB and 4 GiB, got \(containerSize)") }
        guard (Format.minContainerCount...Format.maxContainerCount).contains(containerCount) else {
            throw bad("container count must be \(Format.minContainerCount)...\(Format.maxContainerCount), got \(containerCount)")
        }
        guard blockSize >= 1024, blockSize <= Format.maxBlockSize, blockSize % Format.sectorSize == 0,
            UInt64(blockSize) <= containerSize - UInt64(Format.containerDataStart)
        else { throw bad("block size must be a multiple of 512 from 1 KiB to 16 MiB that fits a container, got \(blockSize)") }
        guard maxRecordSize >= 0 else { throw bad("max record size must not be negative") }
        try codec.validate()
    }
}

/// How opening a log treats damage it finds.
public enum RecoveryMode: String, Sendable, CaseIterable {
    /// Any anomaly fails the open, including a torn tail.
    case strict
    /// A torn tail is dropped and reported; damage below the durable point fails the open. The default.
    case tolerateTornTail
    /// Open read-only and stop at the first damage, reporting where it is.
    case pointInTime
}

/// Group-commit settings of the background writer. Opening (or creating) a log with a field out of
/// range is `invalidArgument`.
public struct GroupCommitOptions: Sendable {
    /// Largest single batch the writer gathers before it writes and syncs: more than 0. Default 4 MiB.
    public var maxBatchBytes: Int = 4 * 1024 * 1024
    /// How long the writer waits after the first flush request for more to join the batch: at most
    /// ``maxLingerNanoseconds`` (one second). Default 0.
    public var lingerNanoseconds: UInt64 = 0
    /// Memory that sealed but unwritten blocks may hold; appends wait (back-pressure) above it. A block
    /// counts the buffer it holds (a whole block's, in sectors), however small it compresses to: blocks
    /// of compressible records reach the limit long before their bytes on disk would. At least 0
    /// (0: an append that seals a block waits until the writer has written it). Default 64 MiB.
    public var maxDirtyBytes: Int = 64 * 1024 * 1024

    /// The longest linger accepted: a longer one would hold every flush that long.
    public static let maxLingerNanoseconds: UInt64 = 1_000_000_000

    /// The default options.
    public init() {}

    func validate() throws {
        func bad(_ m: String) -> LogError { LogError(.invalidArgument, "group commit: \(m)") }
        guard maxBatchBytes > 0 else { throw bad("maxBatchBytes must be more than 0, got \(maxBatchBytes)") }
        guard maxDirtyBytes >= 0 else { throw bad("maxDirtyBytes must not be negative, got \(maxDirtyBytes)") }
        guard lingerNanoseconds <= Self.maxLingerNanoseconds else {
            throw bad("lingerNanoseconds must be at most \(Self.maxLingerNanoseconds) (one second), got \(lingerNanoseconds)")
        }
    }
}

/// Options for opening a log.
public struct LogOpenOptions: Sendable {
    /// How recovery treats damage at the end of the log. Default: a torn tail is dropped.
    public var recovery: RecoveryMode = .tolerateTornTail
    /// Open for inspection only: no lock, no writes. Works while another process writes the log; the log is
    /// seen as the open found it until `LogStore.refresh()` catches it up. Such a log's `durableLSN` is what
    /// it can prove durable, and a flush beyond it is `readOnly`.
    public var readOnly = false
    /// How flushes are batched into fdatasyncs.
    public var groupCommit = GroupCommitOptions()
    /// Memory of decompressed blocks kept for reads (each block's records and their index). Default 8 MiB.
    public var readCacheBytes = 8 * 1024 * 1024
    /// Override the log's default codec for blocks written from now on. It must be valid
    /// (`zlib` levels 1...9): opening with an invalid one is `invalidArgument`.
    public var codec: Codec?
    /// Asked before every block the recovery scan reads (and before the scan starts), between a writable
    /// open's attempts to take a lock that looks held, and by `LogStore.create` before each container it
    /// creates: once it returns true, the open (or create)
    /// stops and throws `terminated`, leaving nothing open or locked, so a later open starts afresh. For
    /// a caller that must be able to give up on the open of a large log (a cluster resource's terminate:
    /// `OnlineResource` sets it). Nil: the open runs to its end.
    public var isCancelled: (@Sendable () -> Bool)?
    /// Tests only: starts the writer thread in place of `trySpawnThread` (false: no thread could be started).
    var startThreadForTesting: (@Sendable (@escaping @Sendable () -> Void) -> Bool)?

    /// The default options: a writable open that drops a torn tail.
    public init() {}

    /// Options for a writable or read-only open with the given recovery mode; the others keep their defaults.
    public init(readOnly: Bool, recovery: RecoveryMode = .tolerateTornTail) {
        self.readOnly = readOnly
        self.recovery = recovery
    }

    /// Throws `invalidArgument` for an option out of range. `open` and `create` call it before touching
    /// any file.
    func validate() throws {
        try groupCommit.validate()
        if let codec {
            do { try codec.validate() } catch let e as LogError {
                throw LogError(.invalidArgument, "codec override: \(e.message)")
            }
        }
    }
}
