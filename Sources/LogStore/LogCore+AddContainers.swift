// Adding containers: `addContainer` (an explicit count) and auto-grow (`.policyGrowth`, as many as the
// policy allows when the log is full). Removing them is in LogCore+RemoveContainers.swift.

import LogFormat

extension LogCore {
    /// How many containers `addContainers` adds.
    enum ContainerCount {
        /// Exactly this many (an explicit add): bound only by `Format.maxContainerCount`, not by the policy.
        case exactly(Int)
        /// What the policy allows when the log is full (auto-grow): see `policyGrowthLocked`.
        case policyGrowth
    }

    /// Creates `count` containers and records them in the base file. Returns their physical ids.
    func addContainers(_ count: Int) throws -> [UInt32] { try addContainers(.exactly(count)) }

    /// Creates containers and records them in the base file. Returns their physical ids: none for
    /// `.policyGrowth` when the policy leaves no room or another add is in progress.
    ///
    /// How many is decided, and reserved (`containersBeingAdded`), under `lock`, so appenders that find
    /// the log full at once cannot together grow it past the policy. The files are created, zero-filled
    /// and synced, and the directory synced, before `metaLock` is taken, so the writer is never held up
    /// by a large container being prepared. Once the base-file write has been attempted the files are
    /// kept whatever happens: the base file may name them. `prefix` names the files instead of the
    /// policy's prefix (`setPolicy` adds containers before its new policy is in force).
    func addContainers(_ request: ContainerCount, prefix override: String? = nil) throws -> [UInt32] {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        let (first, count, prefix): (UInt32, Int, String) = try lock.withLock {
            try checkUsable()
            let count: Int
            switch request {
            case .exactly(let n):
                guard state.containers.count + state.containersBeingAdded + n <= Format.maxContainerCount else {
                    throw LogError(.invalidArgument, "a log has at most \(Format.maxContainerCount) containers")
                }
                count = n
            case .policyGrowth:
                count = policyGrowthLocked()
            }
            let first = state.nextPhysicalID
            // Physical ids are u32 and never reused; the base file may name the last one (`+=` trapped).
            guard UInt64(first) + UInt64(count) <= UInt64(UInt32.max) else {
                throw LogError(.invalidArgument, "the log has used every physical container id (next is \(first))")
            }
            state.nextPhysicalID += UInt32(count)
            state.containersBeingAdded += count
            return (first, count, override ?? state.policy.containerPrefix)
        }
        if count == 0 { return [] }
        defer {
            lock.withLock {
                state.containersBeingAdded -= count
                spaceCondition.broadcast()  // appenders waiting in handleLogFull for this add to end
            }
        }
        var added: [LiveContainer] = []
        func discard() {
            for c in added {
                io.close(c.fd)
                try? io.unlink(c.path)
            }
        }
        do {
            for physical in first..<(first + UInt32(count)) {
                let name = ContainerFiles.name(prefix: prefix, physicalID: physical)
                let path = directory + "/" + name
                let fd = try ContainerFiles.create(io: io, path: path, logID: logID, physicalID: physical, size: containerSize)
                added.append(LiveContainer(physical: physical, fd: fd, logical: 0, endOffset: 0, path: path))
            }
            // The new files' directory entries are durable before the base file names them.
            try io.fsyncDirectory(directory)
        } catch {
            discard()
            // Give the ids back unless another add took ids after them.
            lock.withLock { if state.nextPhysicalID == first + UInt32(count) { state.nextPhysicalID = first } }
            throw error
        }
        var writeAttempted = false
        do {
            try updateMetaOrFail { m in
                guard m.containers.count + count <= Format.maxContainerCount else {
                    throw LogError(.invalidArgument, "a log has at most \(Format.maxContainerCount) containers")
                }
                for c in added {
                    m.containers.append(ContainerEntry(physicalID: c.physical, logicalID: 0, state: .inactive, endOffset: 0))
                    let name = String(c.path.dropFirst(directory.count + 1))
                    if name != ContainerFiles.name(physicalID: c.physical) { m.containerNames[c.physical] = name }
                }
                m.nextPhysicalID = max(m.nextPhysicalID, first + UInt32(count))
                writeAttempted = true
            }
        } catch {
            // A refusal (`invalidArgument`: the record would not fit a slot or validate) comes after the
            // change ran but writes nothing: the files are not named and go, like a failure before it.
            // Only an error of the write itself (`io`, or `failed` once the log failed) may leave them named.
            if writeAttempted, (error as? LogError)?.code != .invalidArgument {
                for c in added { io.close(c.fd) }
            } else {
                discard()
                lock.withLock { if state.nextPhysicalID == first + UInt32(count) { state.nextPhysicalID = first } }
            }
            throw error
        }
        lock.withLock {
            for c in added { state.containers[c.physical] = c }
            state.spaceGeneration += 1
            refreshAppendHintLocked()
        }
        return added.map(\.physical)
    }

    /// The containers auto-grow may add now: the policy's increment, within its maximum count and size
    /// counting the containers being added, and 0 while another add is in progress (the caller waits for
    /// it instead of adding more) or when auto-grow is off.
    private func policyGrowthLocked() -> Int {
        let p = state.policy
        guard p.autoGrow, state.containersBeingAdded == 0 else { return 0 }
        let total = state.containers.count
        let sizeRoom = p.maxSizeBytes == 0 ? Int.max : Int(p.maxSizeBytes / containerSize) - total
        return max(0, min(Int(p.growthIncrement), Int(p.maxContainers) - total, sizeRoom, Format.maxContainerCount - total))
    }
}
