import LogFormat

/// A snapshot of a log's layout, space, streams and statistics. Values go stale at the next append.
public struct LogInfo: Sendable {
    /// One container file of the log.
    public struct Container: Sendable {
        /// The file's fixed id (its name is the policy's prefix and this number).
        public var physicalID: UInt32
        /// The logical container it holds (0 when free).
        public var logicalID: UInt32
        /// Free, holding data, or waiting to be deleted or archived.
        public var state: ContainerState
        /// The container file's path.
        public var path: String
    }

    /// The log's directory, as given to `open` or `create`.
    public var directory: String
    /// The log's identity, written in the base file and every container header.
    public var logID: LogID
    /// Bytes per container file.
    public var containerSize: UInt64
    /// Bytes per block (before compression).
    public var blockSize: Int
    /// The largest record an append accepts.
    public var maxRecordSize: Int
    /// The codec of the blocks written from now on.
    public var codec: Codec
    /// The writer session: incremented by every writable open.
    public var epoch: UInt32
    /// The lowest base of any stream (records below it can be recycled).
    public var baseLSN: LSN
    /// The log's last record, durable or not.
    public var lastLSN: LSN
    /// `LogStore.durableLSN`: on a read-only log, only what it can prove durable.
    public var durableLSN: LSN
    /// The log-wide archive tail: containers from there on wait to be archived (`LSN.null`: not set).
    public var archiveTail: LSN
    /// Every container file, by physical id.
    public var containers: [Container]
    /// Every stream, by id.
    public var streams: [StreamInfo]
    /// The space policy: growth, shrink, size limits, container name prefix.
    public var policy: LogPolicy
    /// This process's flush counters (all zero on a read-only log).
    public var statistics: FlushStatistics
    /// Bytes of decompressed blocks (records and their index) held by the read cache.
    public var readCacheBytes: Int
    /// Total size of all containers.
    public var capacityBytes: UInt64
    /// Capacity that is not free: live records, block padding and container headers.
    public var usedBytes: UInt64
    /// Bytes still writable without recycling: the rest of the current container and every free one.
    public var freeBytes: UInt64
    /// Bytes held by reservations.
    public var reservedBytes: UInt64
    /// Containers holding no data (state `inactive`).
    public var freeContainers: Int { containers.filter { $0.state == .inactive }.count }
}

extension LogCore {
    func info() -> LogInfo {
        lock.withLock {
            let containers = state.containers.values.sorted { $0.physical < $1.physical }.map {
                LogInfo.Container(
                    physicalID: $0.physical, logicalID: $0.logical,
                    state: $0.logical == 0 ? .inactive : $0.pendingDelete ? .pendingDelete : $0.pendingArchive ? .pendingArchive : .active,
                    path: $0.path)
            }
            let capacity = UInt64(state.containers.count) * containerSize
            let free = UInt64(max(0, freeBytesLocked()))
            return LogInfo(
                directory: directory, logID: logID, containerSize: containerSize, blockSize: blockSize,
                maxRecordSize: maxRecordSize, codec: codec, epoch: readEpoch, baseLSN: state.baseLSN, lastLSN: state.lastLSN,
                durableLSN: state.durableLSN, archiveTail: state.archiveTail, containers: containers,
                streams: (0..<state.hot.count).compactMap { streamInfoLocked(UInt16($0)) }, policy: state.policy,
                statistics: state.stats, readCacheBytes: cache.residentBytes, capacityBytes: capacity,
                usedBytes: capacity > free ? capacity - free : 0, freeBytes: free, reservedBytes: UInt64(state.reservedTotal))
        }
    }
}
