// Reading and writing the base file's two slots: docs/format/base-file.md.

import LogFormat

/// The base file: two slots of ``Format/baseSlotSize`` bytes. Generation `g` is written to slot `g % 2`,
/// so an update never touches the newest valid copy; the newest valid slot wins on open.
struct BaseFile {
    let io: any FileIO
    let path: String
    let fd: Int32

    static func slotOffset(generation: UInt64) -> UInt64 { (generation % 2) * UInt64(Format.baseSlotSize) }

    /// Creates the base file atomically: written under a temporary name, synced, renamed, directory synced.
    static func create(io: any FileIO, directory: String, record: BaseRecord) throws {
        let path = directory + "/" + Format.baseFileName
        let temp = path + ".tmp"
        if io.fileExists(temp) { try io.unlink(temp) }
        let fd = try io.open(temp, mode: .createExclusive)
        defer { io.close(fd) }
        // Both slots are written in full, so later updates overwrite already-allocated blocks.
        var image = [UInt8](repeating: 0, count: 2 * Format.baseSlotSize)
        let slot = record.encode()
        let at = Int(slotOffset(generation: record.generation))
        image.replaceSubrange(at..<(at + slot.count), with: slot)
        try io.writeAll(fd, image, at: 0)
        try io.fsync(fd)
        try io.rename(temp, path)
        try io.fsyncDirectory(directory)
    }

    /// The newest valid slot, with a note on any slot that did not validate.
    ///
    /// The signature decides what a file that yields no valid slot is, whatever its length: with no
    /// slot starting with the base-file magic (an empty file too) it is `notFound`, "not a TxLog log";
    /// with one, it is a damaged base file, `corrupt`.
    static func readNewest(io: any FileIO, fd: Int32, path: String) throws -> (BaseRecord, [String]) {
        var image = [UInt8](repeating: 0, count: 2 * Format.baseSlotSize)
        let n: Int
        do { n = try image.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: 0) } } catch var e as LogError where e.path == nil {
            // The read's error names no file ("pread failed: Is a directory"): say which one it was.
            e.path = path
            throw e
        }
        var best: BaseRecord?
        var notes: [String] = []
        var sawMagic = false
        var zeroed: [Int] = []
        for slot in 0..<2 {
            let start = slot * Format.baseSlotSize
            let end = min(n, start + Format.baseSlotSize)
            guard end > start else {
                notes.append("slot \(slot): missing")
                continue
            }
            let bytes = image[start..<end]
            if bytes.count >= 8, bytes.withUnsafeBytes({ $0.loadUnaligned(as: UInt64.self) }) == Format.baseMagic.littleEndian {
                sawMagic = true
            }
            do {
                let r = try bytes.withUnsafeBytes { try BaseRecord.decode($0) }
                guard r.generation % 2 == UInt64(slot) else {
                    notes.append("slot \(slot): generation \(r.generation) belongs to the other slot")
                    continue
                }
                if best == nil || r.generation > best!.generation { best = r }
            } catch let e as LogError {
                if e.code == .unsupportedVersion { throw LogError(e.code, e.message, path: path) }
                // A slot never written (all zeros) is normal for a new log; only a damaged slot is noted.
                if bytes.contains(where: { $0 != 0 }) { notes.append("slot \(slot): \(e.message)") } else { zeroed.append(slot) }
            }
        }
        guard let best else {
            if !sawMagic { throw LogError(.notFound, "not a TxLog log (no base file signature)", path: path) }
            throw LogError(.corrupt, "base file has no valid copy (\(notes.joined(separator: "; ")))", path: path)
        }
        // Create writes generation 1 into slot 1 and the first open generation 2 into slot 0: from
        // generation 2 on both slots have been written, so an all-zero slot was zeroed.
        if best.generation >= 2 {
            notes += zeroed.map { "slot \($0): all zeros, but both slots were written (generation \(best.generation)): zeroed" }
        }
        return (best, notes)
    }

    /// Writes `record` (whose generation is already the next one) into its slot and syncs the file.
    func write(_ record: BaseRecord) throws {
        let bytes = record.encode()
        precondition(bytes.count <= Format.baseSlotSize)
        try io.writeAll(fd, bytes, at: BaseFile.slotOffset(generation: record.generation))
        try io.fdatasync(fd)
    }
}

/// Names and creates container files.
enum ContainerFiles {
    /// `<prefix><physical id, at least 6 digits>`.
    static func name(prefix: String = Format.defaultContainerPrefix, physicalID: UInt32) -> String {
        let digits = String(physicalID)
        return prefix + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The path of a container, given the name the base file records for it (nil: the default name).
    static func path(directory: String, name: String? = nil, physicalID: UInt32) -> String {
        directory + "/" + (name ?? self.name(physicalID: physicalID))
    }

    /// Creates a container: header, then zeros to its full size (so later writes overwrite allocated
    /// blocks, which syncs faster than filling holes), then fsync. The caller fsyncs the directory.
    static func create(io: any FileIO, path: String, logID: LogID, physicalID: UInt32, size: UInt64) throws -> Int32 {
        // A file left by a crash during an earlier add is an orphan: the base file never named it.
        if io.fileExists(path) { try io.unlink(path) }
        let fd = try io.open(path, mode: .createExclusive)
        do {
            let chunk = 1 << 20
            var zeros = [UInt8](repeating: 0, count: chunk)
            var offset: UInt64 = 0
            let header = ContainerHeader(logID: logID, physicalID: physicalID, containerSize: size).encode()
            zeros.replaceSubrange(0..<header.count, with: header)
            while offset < size {
                let n = Int(min(UInt64(chunk), size - offset))
                try zeros.withUnsafeBytes { try io.writeAll(fd, [UnsafeRawBufferPointer(rebasing: $0[0..<n])], at: offset) }
                if offset == 0 { zeros.replaceSubrange(0..<header.count, with: repeatElement(0, count: header.count)) }
                offset += UInt64(n)
            }
            try io.fsync(fd)
            return fd
        } catch {
            io.close(fd)
            try? io.unlink(path)
            throw error
        }
    }

    /// Opens a container and checks its header against the base file.
    static func open(io: any FileIO, path: String, logID: LogID, physicalID: UInt32, size: UInt64, readOnly: Bool) throws -> Int32 {
        let fd: Int32
        do { fd = try io.open(path, mode: readOnly ? .readOnly : .readWrite) } catch let e as LogError where e.code == .notFound {
            throw LogError(.notFound, "container \(physicalID) is missing", container: physicalID, path: path)
        }
        do {
            let actual = try io.fileSize(fd)
            guard actual == size else {
                throw LogError(.corrupt, "container \(physicalID) is \(actual) bytes, expected \(size)", container: physicalID, path: path)
            }
            var bytes = [UInt8](repeating: 0, count: ContainerHeader.size)
            _ = try bytes.withUnsafeMutableBytes { try io.readFully(fd, into: $0, at: 0) }
            let header: ContainerHeader
            do { header = try bytes.withUnsafeBytes { try ContainerHeader.decode($0) } } catch let e as LogError {
                throw LogError(e.code, "container \(physicalID): \(e.message)", container: physicalID, offset: 0, path: path)
            }
            // Each mismatch names the header field (its offset) and what it says instead.
            guard header.logID == logID else {
                throw LogError(
                    .corrupt,
                    "container \(physicalID) belongs to another log: its header names log \(header.logID), the base file log \(logID) (a container or the base file was copied from another log)",
                    container: physicalID, offset: 16, path: path)
            }
            guard header.physicalID == physicalID else {
                throw LogError(
                    .corrupt,
                    "container \(physicalID)'s file holds container \(header.physicalID) of this log (container files swapped, renamed or copied)",
                    container: physicalID, offset: 32, path: path)
            }
            guard header.containerSize == size else {
                throw LogError(
                    .corrupt, "container \(physicalID)'s header says \(header.containerSize) bytes, the base file \(size)", container: physicalID,
                    offset: 40, path: path)
            }
            return fd
        } catch {
            io.close(fd)
            throw error
        }
    }
}
