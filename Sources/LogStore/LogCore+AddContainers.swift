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
    ///
    /// Auto-grow checks again, under `metaLock` just before the base file names the new containers, what
    /// the policy in force then allows (`policyRoomLocked`): a `setPolicy` that lowered the maximum (or
    /// turned auto-grow off) while the files were being prepared is in force by then, and the containers
    /// beyond it are unlinked instead of named. Decided only beforehand, the log ended up over the maximum
    /// it had just been given.
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
        if case .policyGrowth = request { beforeGrowthNamedForTesting?() }
        /// The policy in force allows none of the containers auto-grow prepared.
        struct NoGrowthLeft: Error {}
        var named = count
        var writeAttempted = false
        do {
            try updateMetaOrFail { m in
                if case .policyGrowth = request {
                    // Under `metaLock`: no policy is put in force until this update has been written.
                    named = lock.withLock { min(count, policyRoomLocked()) }
                    guard named > 0 else { throw NoGrowthLeft() }
                }
                guard m.containers.count + named <= Format.maxContainerCount else {
                    throw LogError(.invalidArgument, "a log has at most \(Format.maxContainerCount) containers")
                }
                for c in added.prefix(named) {
                    m.containers.append(ContainerEntry(physicalID: c.physical, logicalID: 0, state: .inactive, endOffset: 0))
                    let name = String(c.path.dropFirst(directory.count + 1))
                    if name != ContainerFiles.name(physicalID: c.physical) { m.containerNames[c.physical] = name }
                }
                m.nextPhysicalID = max(m.nextPhysicalID, first + UInt32(count))
                writeAttempted = true
            }
        } catch is NoGrowthLeft {
            discard()
            lock.withLock { if state.nextPhysicalID == first + UInt32(count) { state.nextPhysicalID = first } }
            return []
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
        // Prepared beyond what the policy in force allows: never named, so removed like a failed add's.
        for c in added[named...] {
            io.close(c.fd)
            try? io.unlink(c.path)
        }
        added.removeLast(count - named)
        lock.withLock {
            for c in added { state.containers[c.physical] = c }
            state.spaceGeneration += 1
            refreshAppendHintLocked()
        }
        return added.map(\.physical)
    }

    /// The containers auto-grow may add now: the policy's increment, within what the policy allows
    /// (`policyRoomLocked`) and the format's 1024 (which counts every container the base file names), and
    /// 0 while another add is in progress (the caller waits for it instead of adding more).
    private func policyGrowthLocked() -> Int {
        guard state.containersBeingAdded == 0 else { return 0 }
        let room = min(Int(state.policy.growthIncrement), policyRoomLocked())
        return max(0, min(room, Format.maxContainerCount - state.containers.count))
    }

    /// How many containers the policy in force lets auto-grow add: up to its maximum count and size, 0
    /// when auto-grow is off. Both maximums bound the containers the log keeps: containers pending delete
    /// (removed while they held records, deleted by recycling once every base has passed them) do not
    /// count, as for the minimum, so the directory may hold those files beside the maximum until then.
    /// Counted, a log at its maximum with one pending delete said `logFull` where, once the removal
    /// completed, it was below the maximum.
    func policyRoomLocked() -> Int {
        let p = state.policy
        guard p.autoGrow else { return 0 }
        let kept = keptContainerCountLocked()
        let sizeRoom = p.maxSizeBytes == 0 ? Int.max : Int(p.maxSizeBytes / containerSize) - kept
        return max(0, min(Int(p.maxContainers) - kept, sizeRoom))
    }
}
