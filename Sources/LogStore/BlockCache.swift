// A size-bounded cache of decompressed blocks for reads.

import LogFormat

/// Decoded blocks by position, evicted oldest-first when over budget. Thread-safe.
final class BlockCache: @unchecked Sendable {
    private let lock = Lock()
    private let capacityBytes: Int
    private var blocks: [UInt64: DecodedBlock] = [:]
    private var order: [UInt64] = []
    private var head = 0
    private var bytes = 0

    init(capacityBytes: Int) { self.capacityBytes = max(0, capacityBytes) }

    func get(_ position: LSN) -> DecodedBlock? { lock.withLock { blocks[position.rawValue] } }

    func put(_ position: LSN, _ block: DecodedBlock) {
        let size = block.payload.count + 64
        guard size <= capacityBytes else { return }
        lock.withLock {
            guard blocks.updateValue(block, forKey: position.rawValue) == nil else { return }
            order.append(position.rawValue)
            bytes += size
            while bytes > capacityBytes, head < order.count {
                if let old = blocks.removeValue(forKey: order[head]) { bytes -= old.payload.count + 64 }
                head += 1
            }
            if head > 1024, head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    /// Drops every cached block of a logical container (it is being recycled).
    func evict(container: UInt32) {
        lock.withLock {
            for key in blocks.keys where UInt32(truncatingIfNeeded: key >> 32) == container {
                if let old = blocks.removeValue(forKey: key) { bytes -= old.payload.count + 64 }
            }
        }
    }

    var residentBytes: Int { lock.withLock { bytes } }
}
