// The committed key → entry map of a store, and how a checkpoint reads it without stalling commits.

/// A committed value and the commit that wrote it.
struct Entry {
    /// A slice: after a load it shares the snapshot's buffer (no allocation per value).
    var value: ArraySlice<UInt8>?
    /// The commit that wrote it. A deleted key has no entry and reads as version 0: versions only
    /// grow, so a key read with version v and still at v was not written since.
    var version: UInt64
}

/// The committed keys of a store, with a frozen mode for checkpoints.
///
/// A checkpoint needs the table as of one instant while commits go on. Holding a second reference to
/// a Swift dictionary and then writing to it would copy the whole dictionary (every key and value
/// retained, O(keys)) inside the store's lock, stalling every transaction for tens of milliseconds
/// with a million keys. Instead, `freeze()` hands the checkpoint the dictionary itself, and until
/// `thaw()` writes go to a small overlay that reads consult first. `thaw()`, called once the checkpoint
/// has dropped its reference, folds the overlay back in place: O(keys written during the checkpoint).
///
/// Not thread-safe: the store's lock guards it.
struct CommittedTable {
    private var base: [Key: Entry]
    /// Writes made while frozen: `.some(nil)` is a delete.
    private var overlay: [Key: Entry?] = [:]
    private(set) var isFrozen = false

    init(_ entries: [Key: Entry] = [:]) { base = entries }

    subscript(key: Key) -> Entry? {
        if isFrozen, let written = overlay[key] { return written }
        return base[key]
    }

    /// Sets (or, with nil, deletes) the committed entry of `key`.
    mutating func set(_ key: Key, _ entry: Entry?) {
        if isFrozen { overlay[key] = .some(entry) } else { base[key] = entry }
    }

    /// The table as of now, for a checkpoint to read outside the lock. Writes go to the overlay until
    /// `thaw()`. Freezing a frozen table is a programming error the store prevents (one checkpoint at
    /// a time); it returns the same frozen dictionary.
    mutating func freeze() -> [Key: Entry] {
        isFrozen = true
        return base
    }

    /// Folds the writes made while frozen into the table. Call it after the checkpoint released the
    /// dictionary `freeze()` returned, so the fold mutates it in place rather than copying it.
    mutating func thaw() {
        guard isFrozen else { return }
        isFrozen = false
        let written = overlay
        overlay = [:]
        for (key, entry) in written { base[key] = entry }
    }

    /// One step of a thaw that never holds the caller's lock for long: moves at most `limit` entries
    /// from the overlay into the table and stays frozen (reads still see the overlay first, so every
    /// key reads the same before and after its move), or, once at most `limit` are left, thaws.
    /// Returns true when the table is thawed. The store calls it under its lock, releasing the lock
    /// between steps, so commits interleave with the fold: a checkpoint under heavy load may leave
    /// tens of thousands of overlay entries, about 0.5 µs each to fold.
    mutating func thawStep(limit: Int) -> Bool {
        guard isFrozen else { return true }
        if overlay.count <= limit {
            thaw()
            return true
        }
        for key in Array(overlay.keys.prefix(limit)) {
            if let entry = overlay.removeValue(forKey: key) { base[key] = entry }
        }
        return false
    }

    /// Keys written since `freeze()` (0 when not frozen).
    var overlayCount: Int { overlay.count }
}
