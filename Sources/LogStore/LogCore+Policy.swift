// The space policy: setting it (`setPolicy`), and auto-shrink (its `autoShrinkPercent`), which removes
// free containers while more than the policy's percentage of the log is free. Its triggers call
// `shrinkIfPolicyAllows` on their own threads (a base, an archive tail or a restart area's base moved, a
// stream deleted, reservations released, a policy set), or `shrinkInBackground` from the writer's
// container switch, and for a check deferred while an append was in the log-full path or reservations
// needed the free containers.

import LogFormat

extension LogCore {
    /// Sets the space policy and persists it.
    func setPolicy(_ policy: LogPolicy) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        try policy.validate()
        // The base file's decoder refuses container names starting with `txlog.base`: a container created
        // under such a prefix would leave a base file no open can read.
        guard BaseRecord.isValidContainerName(ContainerFiles.name(prefix: policy.containerPrefix, physicalID: 0)) else {
            throw LogError(.invalidArgument, "policy: container prefix \"\(policy.containerPrefix)\" would name containers like the base file")
        }
        try savePolicy(policy)
        shrinkIfPolicyAllows()
    }

    /// Adds the containers `policy`'s minimum needs, then writes the policy and puts it in force. Counted
    /// as a metadata change from the start (`beginMetaChangeLocked`): close() waits for the whole of it, so
    /// a call that reports `closed` added no container either. Before, close() ran between the add and the
    /// policy's write: the call threw `closed` with the containers added and the old policy in force.
    private func savePolicy(_ policy: LogPolicy) throws {
        // The containers a raised minimum needs come first (under the new prefix): an add that fails then
        // leaves the old policy in force, in memory and in the base file. Saving the policy first made a
        // failed add throw with the new policy already saved.
        // Containers pending delete do not count: once recycling deletes them the log would be below
        // the minimum it was just given.
        let count = try lock.withLock {
            try beginMetaChangeLocked()
            return keptContainerCountLocked()
        }
        defer { endMetaChange() }
        if count < Int(policy.minContainers) {
            _ = try addContainers(.exactly(Int(policy.minContainers) - count), prefix: policy.containerPrefix)
        }
        beforeMetaChangeWrittenForTesting?()
        // In force only once written, under the base-file update's lock: put in force first and restored
        // on failure, it was written by any base-file update that ran meanwhile, and the restore undid a
        // concurrent setPolicy that had succeeded (its policy on disk, the old one in memory).
        try updateMetaOrFail(policy: policy) { _ in }
    }

    /// Removes free containers while more than the policy's percentage of the log is free, and never one
    /// that outstanding reservations need.
    func shrinkIfPolicyAllows() {
        while true {
            guard let victim = lock.withLock({ shrinkVictimLocked() }) else { return }
            beforeShrinkRemovesForTesting?(victim)
            guard (try? removeContainer(victim, autoShrink: true)) != nil else { return }
        }
    }

    /// The free container auto-shrink removes next (the highest physical id), or nil when the policy
    /// allows none: auto-shrink off, the log at the policy's minimum, or no more than its percentage free.
    /// Nor, for now, while the reservations need every free container, or while an append is in the
    /// log-full path, up to its retry (it needs the room): that check is deferred (`state.shrinkDeferred`)
    /// and runs again once the path ends or a reserved append uses its reservation (a release checks at
    /// once). Left to the next trigger, a log that went idle then stayed above its percentage for good.
    /// Checked again by the removal, under the same hold of the lock that takes the container out of the
    /// table (see `removalStepLocked`).
    func shrinkVictimLocked() -> UInt32? {
        let p = state.policy
        guard p.autoShrinkPercent > 0 else { return nil }
        let total = keptContainerCountLocked()
        let free = state.containers.values.filter { $0.logical == 0 && !$0.pendingDelete }
        guard total > Int(p.minContainers), free.count * 100 > Int(p.autoShrinkPercent) * total else { return nil }
        guard state.makingRoom == 0, freeContainerRemovableLocked() else {
            state.shrinkDeferred = true
            return nil
        }
        return free.map(\.physical).max()
    }

    /// Whether a shrink check that was deferred (see `shrinkVictimLocked`) may run now, no append being in
    /// the log-full path; taken, so it is queued once (`shrinkInBackground`, after letting go of `lock`).
    func takeDeferredShrinkLocked() -> Bool {
        guard state.shrinkDeferred, state.makingRoom == 0 else { return false }
        state.shrinkDeferred = false
        return true
    }

    /// `shrinkIfPolicyAllows` on the deletion queue, for a base-file update on the writer thread (or a
    /// flusher writing inline): removing a container writes the base file again and waits for reads in
    /// progress, which every flush waiting for this batch would wait for too. Counted in `deletions`, so
    /// close() returns only after it; one that starts once close() has begun removes nothing (`closed`).
    func shrinkInBackground() {
        guard lock.withLock({ state.policy.autoShrinkPercent > 0 }) else { return }
        deletions.enter()
        deletionQueue.async { [self] in
            defer { deletions.leave() }
            shrinkIfPolicyAllows()
            shrankInBackgroundForTesting?()
        }
    }
}
