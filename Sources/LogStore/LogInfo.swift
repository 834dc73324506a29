import LogFormat

/// A snapshot of a log's layout and statistics.
public struct LogInfo: Sendable {
    public struct Container: Sendable {
        public var physicalID: UInt32
        public var logicalID: UInt32
        public var state: ContainerState
        public var path: String
    }

    public var directory: String
    public var logID: LogID
    public var containerSize: UInt64
    public var blockSize: Int
    public var maxRecordSize: Int
    public var codec: Codec
    public var epoch: UInt32
    public var baseLSN: LSN
    public var lastLSN: LSN
    public var durableLSN: LSN
    public var containers: [Container]
    public var statistics: FlushStatistics
    public var readCacheBytes: Int
    public var capacityBytes: UInt64 { containerSize * UInt64(containers.count) }
    public var freeContainers: Int { containers.filter { $0.state == .inactive }.count }
}

extension LogCore {
    func info() -> LogInfo {
        lock.withLock {
            let containers = state.containers.values.sorted { $0.physical < $1.physical }.map {
                LogInfo.Container(
                    physicalID: $0.physical, logicalID: $0.logical, state: $0.logical == 0 ? .inactive : .active,
                    path: ContainerFiles.path(directory: directory, physicalID: $0.physical))
            }
            return LogInfo(
                directory: directory, logID: logID, containerSize: containerSize, blockSize: blockSize,
                maxRecordSize: maxRecordSize, codec: codec, epoch: epoch, baseLSN: state.baseLSN, lastLSN: state.lastLSN,
                durableLSN: state.durableLSN, containers: containers, statistics: state.stats,
                readCacheBytes: cache.residentBytes)
        }
    }
}
