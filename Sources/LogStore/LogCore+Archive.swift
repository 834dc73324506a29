// Archive extents: the container byte ranges a backup tool copies, from the archive tail to the base.

import LogFormat

extension LogCore {
    /// The container byte ranges holding records from the archive tail (or the oldest record) up to the
    /// base, in log order, for a backup tool to copy.
    func archiveExtents() -> [ArchiveExtent] {
        lock.withLock {
            let base = logWideBaseLocked()
            let end = base == .null ? state.open.position : base
            let oldest = state.logicalToPhysical.keys.min() ?? end.container
            let start = lowestArchiveTailLocked() ?? LSN(uncheckedContainer: oldest, blockOffset: UInt64(Format.containerDataStart), slot: 0)
            var extents: [ArchiveExtent] = []
            var logical = max(start.container, oldest)
            while logical <= end.container, let p = state.logicalToPhysical[logical], let c = state.containers[p] {
                let from = logical == start.container ? start.blockOffset : UInt64(Format.containerDataStart)
                let closedEnd = c.endOffset > 0 ? c.endOffset : (logical == state.open.logical ? state.open.offset : dataEnd)
                let to = logical == end.container ? min(end.blockOffset, closedEnd) : closedEnd
                if to > from {
                    extents.append(ArchiveExtent(physicalID: p, logicalID: logical, path: c.path, startOffset: from, endOffset: to))
                }
                if logical == .max { break }  // the last logical id (2^32 − 1): `+= 1` would trap
                logical += 1
            }
            return extents
        }
    }
}

/// A byte range of a container that holds log records to archive.
public struct ArchiveExtent: Sendable, Equatable {
    /// The container file's fixed id.
    public var physicalID: UInt32
    /// The logical container it holds.
    public var logicalID: UInt32
    /// The container file's path.
    public var path: String
    /// The first byte of the range, from the start of the container file.
    public var startOffset: UInt64
    /// The byte after the range.
    public var endOffset: UInt64
}
