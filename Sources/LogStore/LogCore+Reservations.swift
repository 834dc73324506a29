// Reservations: space a stream sets aside for future records (CLFS's ReserveAndAppendLog with reservations,
// FreeReservedLog). What plain appends must leave free for them (the floor) is in LogCore+Space.swift, with
// the log-full path a reservation takes when the log cannot hold it now.

import LogFormat

extension LogCore {
    /// Reserves space for future records of the given data sizes on a stream. A reservation the log
    /// cannot hold now goes through the log-full path an append takes (grow within policy, the tail-pinned
    /// handlers, recycling) before it says `logFull`.
    func reserve(stream: UInt16, sizes: [Int]) throws {
        if readOnly { throw LogError(.readOnly, "the log is open read-only") }
        guard !sizes.isEmpty else { throw LogError(.invalidArgument, "reservation sizes must be 0...\(maxRecordSize) bytes") }
        try checkReservationSizes(sizes)
        let cost = sizes.reduce(0) { $0 + reservationCost($1) }
        let largest = sizes.map(reservationCost).max() ?? 0
        var progress = LogFullProgress()
        // Auto-shrink waits from the log-full path until this retry has taken the room it made.
        defer { endMakingRoom(&progress) }
        while true {
            let (shortage, generation): (String?, UInt64) = try lock.withLock {
                try checkUsable()
                guard streamInfoLocked(stream) != nil else { throw LogError(.notFound, "stream \(stream) was deleted") }
                // Refused before the log-full path: growing the log could not make room, and auto-grow
                // took it to the policy's maximum (for good) before the reservation was refused anyway.
                if let never = reservationNeverFitsLocked(cost: cost, largestCost: largest) { throw LogError(.logFull, never) }
                if let shortage = reservationShortageLocked(cost: cost, largestCost: largest) { return (shortage, state.spaceGeneration) }
                state.maxReservedCost = max(state.maxReservedCost, largest)
                state.reservedTotal += cost
                state.hot[Int(stream)].reservedBytes += cost
                state.hot[Int(stream)].reservedRecords += sizes.count
                state.hot[Int(stream)].reservedLargest = max(state.hot[Int(stream)].reservedLargest, sizes.max() ?? 0)
                state.cold[stream]?.reservedSizes.append(contentsOf: sizes)
                state.cold[stream]?.reservedSizes.sort()
                refreshAppendHintLocked()
                return (nil, state.spaceGeneration)
            }
            guard let shortage else { return }
            // Like an append that finds no room: CLFS's answer to a full log (grow per policy, then ask the
            // clients pinning the tail) applies to reservations too. Refused at once, a KV store's prepare
            // (which reserves its outcome record) voted no at every container's end of a log free to grow.
            do {
                try handleLogFull(&progress, generation: generation, need: .reservation(cost: cost, largestCost: largest))
            } catch let e as LogError where e.code == .logFull {
                throw LogError(.logFull, "\(shortage) (\(e.message))", errno: e.errno)
            }
            afterLogFullHandledForTesting?()
        }
    }

    /// Why a reservation costing `cost` (its largest record `largestCost`) can never be granted, or nil:
    /// `reservationShortageLocked` would refuse it even of the log grown as far as its policy allows, in
    /// the roomiest state that log can reach (every container free but the one being written, and that
    /// one empty). Either on top of what is reserved it would hold more than all but one container, or
    /// the free space (those containers' data, less one block header) is less than the reservations'
    /// floor: the reserved bytes and a largest reserved record of slack for each of the containers.
    /// Checked only against the first, a reservation of large records fit the containers but never the
    /// floor: auto-grow took the log to its maximum (for good), and the reservation was refused anyway.
    private func reservationNeverFitsLocked(cost: Int, largestCost: Int) -> String? {
        let most = min(keptContainerCountLocked() + policyRoomLocked(), Format.maxContainerCount)
        let reserved = state.reservedTotal + cost
        guard reserved <= (most - 1) * containerDataBytes else {
            return "reserving \(cost) bytes would pin the log: reservations would hold more than all but one container, also of the \(most) the policy lets the log grow to (\(state.reservedTotal) bytes already reserved)"
        }
        let maxCost = max(state.maxReservedCost, largestCost)
        let roomiest = most * containerDataBytes - BlockHeader.size
        guard reserved + most * maxCost > roomiest else { return nil }
        return "reserving \(cost) bytes would never fit: with a record of \(maxCost) bytes of slack per container boundary, reservations would need \(reserved + most * maxCost) bytes, more than the \(roomiest) bytes free in the \(most) containers the policy lets the log grow to, all empty (\(state.reservedTotal) bytes already reserved)"
    }

    /// Why a reservation costing `cost` (its largest record `largestCost`) cannot be granted now, or nil.
    func reservationShortageLocked(cost: Int, largestCost: Int) -> String? {
        // Containers pending delete are on their way out: counted, they let reservations hold all
        // of the containers that stay.
        let capacity = keptContainerCountLocked() * containerDataBytes
        guard state.reservedTotal + cost <= capacity - containerDataBytes else {
            return "reserving \(cost) bytes would pin the log: reservations would hold more than all but one container"
        }
        let maxCost = max(state.maxReservedCost, largestCost)
        let floor = state.reservedTotal + cost + (freeContainerCountLocked() + 1) * maxCost
        guard floor <= freeBytesLocked() else {
            return "not enough free space to reserve \(cost) bytes (\(freeBytesLocked()) free, \(state.reservedTotal) already reserved)"
        }
        return nil
    }

    /// Throws `invalidArgument` unless every size is one a record may have (so its cost cannot overflow).
    private func checkReservationSizes(_ sizes: [Int]) throws {
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= maxRecordSize }) else {
            throw LogError(.invalidArgument, "reservation sizes must be 0...\(maxRecordSize) bytes")
        }
    }

    /// Releases reservations made for records of the given sizes: each size must be one the stream has
    /// reserved and not yet used or released (CLFS's `FreeReservedLog`: the same sizes that were
    /// reserved), else `invalidArgument` with nothing released. Counted by bytes and records alone, a
    /// release of other sizes could leave a reserved record too few bytes to cover any record: it could
    /// then be neither used nor released, and its bytes stayed reserved for the rest of the open.
    func release(stream: UInt16, sizes: [Int]) throws {
        try checkReservationSizes(sizes)
        let cost = sizes.reduce(0) { $0 + reservationCost($1) }
        try lock.withLock {
            guard streamInfoLocked(stream) != nil, let cold = state.cold[stream] else { throw LogError(.notFound, "stream \(stream) was deleted") }
            guard let rest = cold.reservedSizes(releasing: sizes) else {
                let h = state.hot[Int(stream)]
                throw LogError(
                    .invalidArgument,
                    "releasing sizes stream \(stream) has not reserved (\(h.reservedRecords) records reserved, largest \(h.reservedLargest) bytes): release the sizes reserved")
            }
            state.cold[stream]?.reservedSizes = rest
            state.hot[Int(stream)].reservedRecords = rest.count
            state.hot[Int(stream)].reservedBytes -= cost
            state.hot[Int(stream)].reservedLargest = rest.last ?? 0
            state.reservedTotal -= cost
            if state.reservedTotal == 0 { state.maxReservedCost = 0 }
            refreshAppendHintLocked()
        }
        // Reserved space may have been all that kept a free container from auto-shrink.
        shrinkIfPolicyAllows()
    }
}
