// A size-bounded cache of decompressed blocks for reads.

import LogFormat

/// Decoded blocks by position, evicted oldest-first when over budget. A block counts its payload and its
/// record index (`footprint`). Thread-safe. The eviction queue
/// (`order` from `head` on) holds at most about twice as many keys as there are cached blocks, plus 1024.
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
        let size = Self.footprint(block)
        guard size <= capacityBytes else { return }
        lock.withLock {
            guard blocks.updateValue(block, forKey: position.rawValue) == nil else { return }
            order.append(position.rawValue)
            bytes += size
            while bytes > capacityBytes, head < order.count {
                if let old = blocks.removeValue(forKey: order[head]) { bytes -= Self.footprint(old) }
                head += 1
            }
            if order.count - head > 2 * blocks.count + 1024 {
                // Mostly keys `evict(container:)` already dropped: keep the live ones, in order. The queue
                // then holds about one key per cached block again, so this runs once per 1024+ puts.
                order = order[head...].filter { blocks[$0] != nil }
                head = 0
            } else if head > 1024, head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    /// Keys in the eviction queue (live or already evicted) and cached blocks, read together (tests check
    /// the queue stays bounded).
    var queueLength: (keys: Int, blocks: Int) { lock.withLock { (order.count - head, blocks.count) } }

    /// Drops every cached block of a logical container (it is being recycled). Their keys stay in the
    /// eviction queue until `put` compacts it.
    func evict(container: UInt32) {
        lock.withLock {
            for key in blocks.keys where UInt32(truncatingIfNeeded: key >> 32) == container {
                if let old = blocks.removeValue(forKey: key) { bytes -= Self.footprint(old) }
            }
        }
    }

    var residentBytes: Int { lock.withLock { bytes } }

    /// The memory a cached block holds: its payload, and the index of its records, which for a block of
    /// small records is larger than the payload (32 bytes a slot for 24-byte empty records). Counting the
    /// payload alone let the cache hold over twice its budget.
    static func footprint(_ block: DecodedBlock) -> Int {
        block.payload.count + block.slots.count * MemoryLayout<RecordSlot>.stride + 64
    }
}
