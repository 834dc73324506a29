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

    public var directory: String
    public var logID: LogID
    public var containerSize: UInt64
    public var blockSize: Int
    public var maxRecordSize: Int
    public var codec: Codec
    public var epoch: UInt32
    /// The lowest base of any stream (records below it can be recycled).
    public var baseLSN: LSN
    public var lastLSN: LSN
    /// `LogStore.durableLSN`: on a read-only log, only what it can prove durable.
    public var durableLSN: LSN
    public var archiveTail: LSN
    public var containers: [Container]
    public var streams: [StreamInfo]
    public var policy: LogPolicy
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
