// Snapshot files: every committed key and value of a store at one point of its stream. Specified in
// docs/format/kv-snapshot.md. Written to a temporary name, synced, renamed, directory synced.

import LogStore
import TransactionManager

#if canImport(Glibc)
import Glibc
#endif

enum KVSnapshotFile {
    static let magic: UInt32 = 0x3153_564B  // "KVS1"
    static let version: UInt8 = 1
    static let headerSize = 40

    static func name(store: GUID, generation: UInt64) -> String { "kv-\(store)-\(generation).snap" }

    /// Writes `entries` (ascending keys) to `directory/name` atomically and durably.
    static func write(
        io: any FileIO, directory: String, name: String, store: GUID, coveredThrough: LSN, entries: [(Key, [UInt8])]
    ) throws {
        try write(io: io, directory: directory, name: name, store: store, coveredThrough: coveredThrough, slices: entries.map { ($0.0, $0.1[...]) })
    }

    /// Bytes written between two write-back hints (see `write`).
    static let writebackInterval = 1 << 20

    /// Writes `slices` (ascending keys) to `directory/name` atomically and durably. Every
    /// `writebackEvery` bytes it asks the kernel to start writing what it wrote (`FileIO.startWriteback`),
    /// so the final fsync does not queue the whole snapshot in front of the log's own fdatasyncs: the
    /// commits that run beside a checkpoint wait behind at most a few MiB instead.
    static func write(
        io: any FileIO, directory: String, name: String, store: GUID, coveredThrough: LSN, slices entries: [(Key, ArraySlice<UInt8>)],
        writebackEvery: Int = writebackInterval
    ) throws {
        let temp = directory + "/" + name + ".tmp"
        if io.fileExists(temp) { try io.unlink(temp) }
        let fd = try io.open(temp, mode: .createExclusive)
        do {
            var w = ByteWriter(capacity: 1 << 20 + 4096)
            w.u32(magic)
            w.u8(version)
            w.u8(0)
            w.u16(0)
            w.guid(store)
            w.u64(coveredThrough.rawValue)
            w.u64(UInt64(entries.count))
            var crc: UInt32 = 0
            var offset: UInt64 = 0
            var kicked: UInt64 = 0
            let chunk = min(1 << 20, max(1, writebackEvery))
            func drain(_ force: Bool) throws {
                guard force || w.bytes.count >= chunk else { return }
                crc = CRC32C.checksum(w.bytes, continuing: crc)
                try io.writeAll(fd, w.bytes, at: offset)
                offset += UInt64(w.bytes.count)
                w.bytes.removeAll(keepingCapacity: true)
                if offset - kicked >= UInt64(max(1, writebackEvery)) {
                    io.startWriteback(fd, offset: kicked, length: offset - kicked)
                    kicked = offset
                }
            }
            for (k, v) in entries {
                w.lengthPrefixed(k.bytes)
                w.lengthPrefixed(v)
                try drain(false)
            }
            try drain(true)
            var trailer = ByteWriter(capacity: 4)
            trailer.u32(crc)
            try io.writeAll(fd, trailer.bytes, at: offset)
            try io.fsync(fd)
            io.close(fd)
        } catch {
            io.close(fd)
            try? io.unlink(temp)
            throw error
        }
        do { try io.rename(temp, directory + "/" + name) } catch {
            // Left behind, the temporary file (the size of the whole snapshot) would stay for good: the
            // next checkpoint writes another generation.
            try? io.unlink(temp)
            throw error
        }
        try io.fsyncDirectory(directory)
    }

    /// Reads and validates a snapshot: magic, version, store, CRC32C, and every length and count.
    /// Reads and validates a snapshot into an array of entries (ascending keys).
    static func read(io: any FileIO, path: String, store: GUID) throws -> (coveredThrough: LSN, entries: [(Key, [UInt8])]) {
        var entries: [(Key, [UInt8])] = []
        let covered = try read(io: io, path: path, store: store, reserve: { entries.reserveCapacity($0) }, each: { entries.append(($0, Array($1))) })
        return (covered, entries)
    }

    /// Reads and validates a snapshot, handing each entry (in ascending key order) to `each`. Values are
    /// slices of one buffer holding the whole file: loading allocates nothing per value.
    static func read(io: any FileIO, path: String, store: GUID, reserve: (Int) -> Void = { _ in }, each: (Key, ArraySlice<UInt8>) -> Void) throws -> LSN {
        let fd = try io.open(path, mode: .readOnly)
        defer { io.close(fd) }
        let size = try io.fileSize(fd)
        guard size >= UInt64(headerSize + 4), size <= UInt64(Int.max / 2) else {
            throw LogError(.corrupt, "snapshot is \(size) bytes, too short or too long", path: path)
        }
        // The whole file is read into one buffer. A size no memory can hold (a damaged file system's, a
        // sparse file, a store larger than this machine) made that allocation fail, which traps. A size
        // above the machine's physical memory is refused outright (the store is held in memory, so such a
        // snapshot could not be loaded, and where the kernel hands out any amount of address space the
        // allocation would succeed and the read fill terabytes); below it, malloc is asked first.
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        let (memory, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        if pages > 0, pageSize > 0, !overflow, size > UInt64(memory) {
            throw LogError(.io, "snapshot is \(size) bytes, more than this machine's \(memory) bytes of memory: it cannot be loaded", path: path, errno: ENOMEM)
        }
        guard let probe = malloc(Int(size)) else {
            throw LogError(.io, "snapshot is \(size) bytes: no memory for a buffer that size to read it into", path: path, errno: ENOMEM)
        }
        free(probe)
        let data = try [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, initialized in
            initialized = try io.readFully(fd, into: UnsafeMutableRawBufferPointer(buffer), at: 0)
        }
        guard data.count == Int(size) else { throw LogError(.corrupt, "snapshot is shorter than its size", path: path) }
        return try parse(data, path: path, store: store, reserve: reserve, each: each)
    }

    /// Validates snapshot bytes (the whole file) and hands each entry to `each`. `store` nil accepts any
    /// owner.
    static func parse(_ bytes: [UInt8], path: String, store: GUID?, reserve: (Int) -> Void = { _ in }, each: (Key, ArraySlice<UInt8>) -> Void) throws -> LSN {
        let data = bytes
        guard data.count >= headerSize + 4 else { throw LogError(.corrupt, "snapshot is \(data.count) bytes, too short", path: path) }
        let body = data.count - 4
        let stored = UInt32(data[body]) | UInt32(data[body + 1]) << 8 | UInt32(data[body + 2]) << 16 | UInt32(data[body + 3]) << 24
        let crc = data.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard crc == stored else { throw LogError(.corrupt, "snapshot checksum mismatch", path: path) }
        var r = KVReader(data, what: "snapshot \(path)", end: body)
        guard try r.u32() == magic else { throw LogError(.corrupt, "not a snapshot file (bad magic)", path: path) }
        let v = try r.u8()
        guard v == version else { throw LogError(.unsupportedVersion, "snapshot version \(v)", path: path) }
        _ = try r.u8()
        _ = try r.u16()
        let owner = try r.guid()
        if let store, owner != store { throw LogError(.corrupt, "snapshot belongs to store \(owner), not \(store)", path: path) }
        let covered = LSN(rawValue: try r.u64())
        let count = try r.u64()
        guard count <= UInt64(r.remaining / 8) else { throw LogError(.corrupt, "snapshot count \(count) cannot fit", path: path) }
        // Every entry is checked before anything is reserved for them, building nothing: a count the
        // entries do not bear out (a crafted file with a valid CRC) reserved a dictionary slot per claimed
        // entry, about 9 times the file's size, before the parse failed.
        var check = r
        var previous: ArraySlice<UInt8>?
        for _ in 0..<count {
            let k = try check.slice(limit: KVRecord.maxKey)
            _ = try check.slice(limit: KVRecord.maxValue)
            if let previous, !precedes(previous, k) { throw LogError(.corrupt, "snapshot keys are not in ascending order", path: path) }
            previous = k
        }
        guard check.atEnd else { throw LogError(.corrupt, "snapshot has trailing bytes", path: path) }
        reserve(Int(count))
        for _ in 0..<count {
            let k = Key(Array(try r.slice(limit: KVRecord.maxKey)))
            each(k, try r.slice(limit: KVRecord.maxValue))
        }
        return covered
    }

    /// Whether `a` sorts strictly before `b` in ``Key``'s order: bytewise, unsigned, a prefix first.
    static func precedes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        let n = min(a.count, b.count)
        let c = a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb -> Int32 in
                guard n > 0, let x = pa.baseAddress, let y = pb.baseAddress else { return 0 }
                return memcmp(x, y, n)
            }
        }
        return c < 0 || (c == 0 && a.count < b.count)
    }
}
