// Harness piece T2 of the reliability contract: an in-memory FileIO that models what survives a power
// loss (in the style of LevelDB's FaultInjectionTestEnv, RocksDB's FaultInjectionTestFS and LazyFS).
//
// Model:
// - Files are inodes holding two images: `durable` (what the platter has) and `current` (what a reader
//   sees: durable plus every write since the last fsync/fdatasync of that file). The sectors (512 bytes)
//   that differ since the last sync are tracked. fsync and fdatasync both make content and size durable.
// - Directories map names to inodes twice: the durable map and the current one, plus the ordered list of
//   creates, renames and unlinks since the last fsyncDirectory of that directory. An inode no durable
//   name points to is gone after a crash (unless an fd still holds it: no fds survive a crash).
// - Creating a directory is durable at once by default. The engine never fsyncs the parent of a log
//   directory it creates, so the strict model (`durableMkdir: false`: a new directory, like a file, needs
//   a directory fsync of its parent) loses every young log; PowerLossTests keeps that as a known issue.
// - flock always succeeds (one process).
// - A sync may lose its writeback, as Linux does when the device fails it (`loseWritebackAtNextFileSync`):
//   the call fails with EIO, the file's dirty sectors are marked clean without reaching `durable`, and
//   readers still see them (the page cache keeps them). A later sync of the file then succeeds without
//   writing them: only sectors written again since are dirty. So a sync makes durable only the dirty
//   sectors, never the whole volatile image.
//
// A crash (`crash(mode:seed:)`) builds a new disk holding one possible post-power-loss state:
// - `.dropUnsynced`: every unsynced write and directory operation is lost;
// - `.randomSectors`: each unsynced sector independently keeps its new or its old content, each file
//   keeps its old or new size, and each directory keeps a random prefix of its unsynced operations;
// - `.tornSector`: every unsynced write and directory operation reaches the disk except one sector,
//   which ends up as a prefix of the new bytes followed by the rest of the old ones.
//
// Power can also be cut automatically: the predicate given to `armCut` is asked at each sync call (before it takes effect)
// and after each pwritev; when it answers true the disk freezes the state of that moment
// (`frozenAtCut`) and fails every later call with EIO, as if the machine had stopped.

import Foundation
@testable import LogStore

final class SimulatedDisk: FileIO, @unchecked Sendable {
    enum CrashMode: String, Sendable, CaseIterable, CustomStringConvertible {
        case dropUnsynced = "a"
        case randomSectors = "b"
        case tornSector = "c"
        var description: String { rawValue }
    }

    /// A point where power may be cut.
    enum Event: Sendable, Equatable {
        /// The nth sync call (fdatasync, fsync or fsyncDirectory), before it takes effect.
        case sync(Int)
        /// Right after the nth pwritev took effect (in the volatile image).
        case write(Int)
    }

    static let sectorSize = 512
    static let EIO: Int32 = 5
    static let ENOENT: Int32 = 2
    static let EEXIST: Int32 = 17

    struct Inode {
        var durable: [UInt8] = []
        var current: [UInt8] = []
        /// Sectors of `current` written (or resized) since the last sync.
        var dirty: Set<Int> = []
        var isDirty: Bool { !dirty.isEmpty || durable.count != current.count }

        /// `durable` at the current size with `sectors` of `current` written over it.
        func writtenBack(_ sectors: Set<Int>) -> [UInt8] {
            var image = durable
            if image.count > current.count {
                image.removeLast(image.count - current.count)
            } else if image.count < current.count {
                image.append(contentsOf: SimulatedDisk.zeros(current.count - image.count))
            }
            image.withUnsafeMutableBytes { dst in
                current.withUnsafeBytes { src in
                    for sector in sectors {
                        let start = sector * SimulatedDisk.sectorSize
                        let end = min(start + SimulatedDisk.sectorSize, src.count)
                        if start < end { dst.baseAddress!.advanced(by: start).copyMemory(from: src.baseAddress!.advanced(by: start), byteCount: end - start) }
                    }
                }
            }
            return image
        }
    }

    enum DirOp {
        case link(String, Int)
        case rename(String, String)
        case unlink(String)
        case mkdir(String)
    }

    struct Directory {
        var durable: [String: Int] = [:]
        var current: [String: Int] = [:]
        var pending: [DirOp] = []
    }

    struct State {
        var inodes: [Int: Inode] = [:]
        var directories: [String: Directory] = ["/": Directory()]
        var nextInode = 1
    }

    private let lock = Lock()
    private var state: State
    private var fds: [Int32: (inode: Int, writable: Bool)] = [:]
    private var nextFD: Int32 = 3
    private var dead = false
    private var frozen: State?
    /// The file sync (counted from `loseWritebackAtFileSync`) that loses its writeback, and the count.
    private var loseWritebackAt: Int?
    private var fileSyncsArmed = 0
    private var lost = 0
    /// How many syncs lost their writeback.
    var lostWritebacks: Int { lock.withLock { lost } }

    /// Counters of the calls that can be power-cut points.
    private var syncs = 0
    private var writes = 0
    var syncCount: Int { lock.withLock { syncs } }
    var writeCount: Int { lock.withLock { writes } }
    /// Asked at each event; true cuts the power there.
    private var cutPower: (@Sendable (Event) -> Bool)?
    /// The event the power was cut at, if it was.
    private var cutEvent: Event?
    var cutAt: Event? { lock.withLock { cutEvent } }

    /// A broken device for testing the checkers: fsync and fdatasync succeed but make nothing durable.
    let ignoresFileSync: Bool
    /// False: a new directory's entry in its parent is durable only after the parent is fsynced.
    let durableMkdir: Bool

    init(ignoresFileSync: Bool = false, durableMkdir: Bool = true) {
        state = State()
        self.ignoresFileSync = ignoresFileSync
        self.durableMkdir = durableMkdir
    }

    private init(state: State, durableMkdir: Bool = true) {
        self.state = state
        ignoresFileSync = false
        self.durableMkdir = durableMkdir
    }

    /// Cuts the power at the first event for which `when` answers true.
    func armCut(_ when: @escaping @Sendable (Event) -> Bool) { lock.withLock { cutPower = when } }

    func disarmCut() { lock.withLock { cutPower = nil } }

    // MARK: Snapshots and crashes

    /// True once the power was cut.
    var isDead: Bool { lock.withLock { dead } }

    /// The state at the power cut (durable images plus everything still volatile), as a live disk.
    var frozenAtCut: SimulatedDisk? { lock.withLock { frozen.map { SimulatedDisk(state: $0, durableMkdir: durableMkdir) } } }

    /// An exact copy (durable and volatile state, no open files, counters reset).
    func copy() -> SimulatedDisk { lock.withLock { SimulatedDisk(state: state, durableMkdir: durableMkdir) } }

    /// One possible state after a power loss now. Open files are not carried over.
    func crash(mode: CrashMode, seed: UInt64) -> SimulatedDisk {
        let s = lock.withLock { state }
        return SimulatedDisk(state: SimulatedDisk.crashed(s, mode: mode, seed: seed), durableMkdir: durableMkdir)
    }

    /// Total unsynced sectors and directory operations (0 means every crash mode gives the same state).
    var volatileUnits: Int {
        lock.withLock {
            state.inodes.values.reduce(0) { $0 + $1.dirty.count + ($1.durable.count != $1.current.count ? 1 : 0) }
                + state.directories.values.reduce(0) { $0 + $1.pending.count }
        }
    }

    private static func crashed(_ s: State, mode: CrashMode, seed: UInt64) -> State {
        var rng = SplitMix64(seed: seed &+ 0x5DEE_CE66)
        var out = State(inodes: [:], directories: [:], nextInode: s.nextInode)
        // Directories first (parents before children): which directories and names survive.
        var pendingDirs = Set<String>()
        var keptDirs = Set<String>()
        var droppedDirs = Set<String>()
        for (path, dir) in s.directories.sorted(by: { $0.key < $1.key }) {
            let parent = split(path).dir
            if path != "/", droppedDirs.contains(parent) || (pendingDirs.contains(path) && !keptDirs.contains(path)) {
                droppedDirs.insert(path)
                continue
            }
            for case .mkdir(let name) in dir.pending { pendingDirs.insert(path == "/" ? "/" + name : path + "/" + name) }
            var names = dir.durable
            let keep: Int
            switch mode {
            case .dropUnsynced: keep = 0
            case .randomSectors: keep = dir.pending.isEmpty ? 0 : Int(rng.next() % UInt64(dir.pending.count + 1))
            case .tornSector: keep = dir.pending.count
            }
            for op in dir.pending.prefix(keep) {
                switch op {
                case .mkdir(let name): keptDirs.insert(path == "/" ? "/" + name : path + "/" + name)
                case .link(let name, let ino): names[name] = ino
                case .rename(let from, let to):
                    if let ino = names.removeValue(forKey: from) { names[to] = ino }
                case .unlink(let name): names[name] = nil
                }
            }
            out.directories[path] = Directory(durable: names, current: names, pending: [])
        }
        let live = Set(out.directories.values.flatMap { $0.durable.values })
        // The sector to tear, chosen among all dirty sectors of surviving files.
        var tear: (inode: Int, sector: Int)?
        if mode == .tornSector {
            var all: [(Int, Int)] = []
            for ino in live.sorted() {
                guard let node = s.inodes[ino] else { continue }
                for sector in node.dirty.sorted() { all.append((ino, sector)) }
            }
            if !all.isEmpty { tear = all[Int(rng.next() % UInt64(all.count))] }
        }
        for ino in live.sorted() {
            guard let node = s.inodes[ino] else { continue }
            if !node.isDirty {
                out.inodes[ino] = Inode(durable: node.durable, current: node.durable, dirty: [])
                continue
            }
            var image: [UInt8]
            switch mode {
            case .dropUnsynced:
                image = node.durable
            case .tornSector:
                image = node.writtenBack(node.dirty)
                if let tear, tear.inode == ino {
                    let start = tear.sector * sectorSize
                    let end = min(start + sectorSize, image.count)
                    if start < end {
                        // Bytes from `split` on keep their old value (zero beyond the old size).
                        let split = start + 1 + Int(rng.next() % UInt64(max(1, end - start - 1)))
                        for k in split..<end { image[k] = k < node.durable.count ? node.durable[k] : 0 }
                    }
                }
            case .randomSectors:
                let size = rng.next() & 1 == 0 ? node.durable.count : node.current.count
                image = node.durable
                if image.count > size {
                    image.removeLast(image.count - size)
                } else if image.count < size {
                    image.append(contentsOf: zeros(size - image.count))
                }
                image.withUnsafeMutableBytes { dst in
                    node.current.withUnsafeBytes { src in
                        for sector in node.dirty.sorted() where rng.next() & 1 == 1 {
                            let start = sector * sectorSize
                            let end = min(start + sectorSize, size, src.count)
                            if start < end { dst.baseAddress!.advanced(by: start).copyMemory(from: src.baseAddress!.advanced(by: start), byteCount: end - start) }
                        }
                    }
                }
            }
            out.inodes[ino] = Inode(durable: image, current: image, dirty: [])
        }
        return out
    }

    /// `n` zero bytes, made with memset (a generic fill loop is slow in debug builds).
    static func zeros(_ n: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
            if n > 0 { memset(buffer.baseAddress!, 0, n) }
            count = n
        }
    }

    // MARK: Paths

    private static func split(_ path: String) -> (dir: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("/", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    private static func normalized(_ path: String) -> String {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        return p
    }

    private func ioError(_ op: String, _ e: Int32 = SimulatedDisk.EIO, path: String? = nil) -> LogError {
        LogError(e == SimulatedDisk.ENOENT ? .notFound : .io, "\(op) failed (simulated errno \(e))", path: path, errno: e)
    }

    /// Fails when the power is off. Must hold `lock`.
    private func checkAliveLocked(_ op: String) throws {
        if dead { throw ioError("\(op) after power loss") }
    }

    private func cutLocked(_ event: Event) -> Bool {
        guard let cutPower, cutPower(event) else { return false }
        frozen = state
        dead = true
        cutEvent = event
        return true
    }

    private func inodeLocked(_ fd: Int32, _ op: String) throws -> Int {
        guard let f = fds[fd] else { throw ioError(op, 9) }
        return f.inode
    }

    private func markDirty(_ node: inout Inode, from: Int, to: Int) {
        guard to > from else { return }
        for sector in (from / SimulatedDisk.sectorSize)...((to - 1) / SimulatedDisk.sectorSize) { node.dirty.insert(sector) }
    }

    // MARK: FileIO

    func open(_ path: String, mode: FileOpenMode) throws -> Int32 {
        try lock.withLock {
            try checkAliveLocked("open")
            let (dir, name) = SimulatedDisk.split(SimulatedDisk.normalized(path))
            guard state.directories[dir] != nil else { throw ioError("open", SimulatedDisk.ENOENT, path: path) }
            var ino = state.directories[dir]!.current[name]
            switch mode {
            case .readOnly, .readWrite:
                guard ino != nil else { throw ioError("open", SimulatedDisk.ENOENT, path: path) }
            case .createExclusive:
                guard ino == nil else { throw ioError("open", SimulatedDisk.EEXIST, path: path) }
                let n = state.nextInode
                state.nextInode += 1
                state.inodes[n] = Inode()
                state.directories[dir]!.current[name] = n
                state.directories[dir]!.pending.append(.link(name, n))
                ino = n
            }
            let fd = nextFD
            nextFD += 1
            fds[fd] = (ino!, mode != .readOnly)
            return fd
        }
    }

    func close(_ fd: Int32) {
        lock.withLock { _ = fds.removeValue(forKey: fd) }
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try lock.withLock {
            try checkAliveLocked("pread")
            let ino = try inodeLocked(fd, "pread")
            let data = state.inodes[ino]!.current
            guard offset < UInt64(data.count), !buffer.isEmpty else { return 0 }
            let start = Int(offset)
            let n = min(buffer.count, data.count - start)
            data.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress!.advanced(by: start), byteCount: n)
            }
            return n
        }
    }

    func pwritev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws -> Int {
        try lock.withLock {
            try checkAliveLocked("pwritev")
            guard let f = fds[fd], f.writable else { throw ioError("pwritev", 9) }
            let total = buffers.reduce(0) { $0 + $1.count }
            let start = Int(offset)
            var node = state.inodes.removeValue(forKey: f.inode)!
            if node.current.count < start + total {
                markDirty(&node, from: node.current.count, to: start + total)
                node.current.append(contentsOf: SimulatedDisk.zeros(start + total - node.current.count))
            }
            node.current.withUnsafeMutableBytes { dst in
                var at = start
                for b in buffers where !b.isEmpty {
                    dst.baseAddress!.advanced(by: at).copyMemory(from: b.baseAddress!, byteCount: b.count)
                    at += b.count
                }
            }
            markDirty(&node, from: start, to: start + total)
            state.inodes[f.inode] = node
            writes += 1
            _ = cutLocked(.write(writes))
            return total
        }
    }

    private func syncLocked(_ op: String, _ apply: () throws -> Void) throws {
        try checkAliveLocked(op)
        syncs += 1
        if cutLocked(.sync(syncs)) { throw ioError("\(op) (power cut)") }
        try apply()
    }

    private func syncFile(_ fd: Int32, _ op: String) throws {
        try lock.withLock {
            try syncLocked(op) {
                let ino = try inodeLocked(fd, op)
                if ignoresFileSync { return }
                fileSyncsArmed += 1
                if fileSyncsArmed == loseWritebackAt {
                    // The writeback failed: the pages are clean now, the device never got them.
                    loseWritebackAt = nil
                    lost += 1
                    state.inodes[ino]!.dirty.removeAll()
                    throw ioError("\(op) (writeback lost)")
                }
                state.inodes[ino]!.durable = state.inodes[ino]!.writtenBack(state.inodes[ino]!.dirty)
                state.inodes[ino]!.dirty.removeAll()
            }
        }
    }

    /// The next fdatasync or fsync of a file fails with EIO and loses its writeback (see the model above).
    func loseWritebackAtNextFileSync() { loseWritebackAtFileSync(1) }

    /// The `nth` fdatasync or fsync of a file from now fails with EIO and loses its writeback.
    func loseWritebackAtFileSync(_ nth: Int) {
        lock.withLock {
            fileSyncsArmed = 0
            loseWritebackAt = nth
        }
    }

    func fdatasync(_ fd: Int32) throws { try syncFile(fd, "fdatasync") }

    func fsync(_ fd: Int32) throws { try syncFile(fd, "fsync") }

    func fsyncDirectory(_ path: String) throws {
        try lock.withLock {
            try syncLocked("fsync directory") {
                let p = SimulatedDisk.normalized(path)
                guard state.directories[p] != nil else { throw ioError("fsync directory", SimulatedDisk.ENOENT, path: path) }
                state.directories[p]!.durable = state.directories[p]!.current
                state.directories[p]!.pending.removeAll()
            }
        }
    }

    func fileSize(_ fd: Int32) throws -> UInt64 {
        try lock.withLock {
            try checkAliveLocked("fstat")
            return UInt64(state.inodes[try inodeLocked(fd, "fstat")]!.current.count)
        }
    }

    func truncate(_ fd: Int32, to size: UInt64) throws {
        try lock.withLock {
            try checkAliveLocked("ftruncate")
            let ino = try inodeLocked(fd, "ftruncate")
            var node = state.inodes.removeValue(forKey: ino)!
            let old = node.current.count
            let new = Int(size)
            if new < old { node.current.removeLast(old - new) } else { node.current.append(contentsOf: SimulatedDisk.zeros(new - old)) }
            markDirty(&node, from: min(old, new), to: max(old, new))
            state.inodes[ino] = node
        }
    }

    func rename(_ from: String, _ to: String) throws {
        try lock.withLock {
            try checkAliveLocked("rename")
            let (d1, n1) = SimulatedDisk.split(SimulatedDisk.normalized(from))
            let (d2, n2) = SimulatedDisk.split(SimulatedDisk.normalized(to))
            guard d1 == d2 else { throw ioError("rename across directories (not modelled)", 18, path: to) }
            guard let ino = state.directories[d1]?.current[n1] else { throw ioError("rename", SimulatedDisk.ENOENT, path: from) }
            state.directories[d1]!.current[n1] = nil
            state.directories[d1]!.current[n2] = ino
            state.directories[d1]!.pending.append(.rename(n1, n2))
        }
    }

    func unlink(_ path: String) throws {
        try lock.withLock {
            try checkAliveLocked("unlink")
            let (d, n) = SimulatedDisk.split(SimulatedDisk.normalized(path))
            guard state.directories[d]?.current[n] != nil else { throw ioError("unlink", SimulatedDisk.ENOENT, path: path) }
            state.directories[d]!.current[n] = nil
            state.directories[d]!.pending.append(.unlink(n))
        }
    }

    func makeDirectory(_ path: String) throws {
        try lock.withLock {
            try checkAliveLocked("mkdir")
            let p = SimulatedDisk.normalized(path)
            guard state.directories[p] == nil else { throw ioError("mkdir", SimulatedDisk.EEXIST, path: path) }
            let (parent, _) = SimulatedDisk.split(p)
            guard state.directories[parent] != nil else { throw ioError("mkdir", SimulatedDisk.ENOENT, path: path) }
            state.directories[p] = Directory()
            if !durableMkdir { state.directories[parent]!.pending.append(.mkdir(SimulatedDisk.split(p).name)) }
        }
    }

    func listDirectory(_ path: String) throws -> [String] {
        try lock.withLock {
            try checkAliveLocked("readdir")
            let p = SimulatedDisk.normalized(path)
            guard let d = state.directories[p] else { throw ioError("readdir", SimulatedDisk.ENOENT, path: path) }
            let subdirs = state.directories.keys.filter { $0 != p && SimulatedDisk.split($0).dir == p }.map { SimulatedDisk.split($0).name }
            return (Array(d.current.keys) + subdirs).sorted()
        }
    }

    func fileExists(_ path: String) -> Bool {
        lock.withLock {
            let p = SimulatedDisk.normalized(path)
            if state.directories[p] != nil { return true }
            let (d, n) = SimulatedDisk.split(p)
            return state.directories[d]?.current[n] != nil
        }
    }

    func tryLockExclusive(_ fd: Int32) throws -> Bool {
        try lock.withLock {
            try checkAliveLocked("flock")
            _ = try inodeLocked(fd, "flock")
            return true
        }
    }

    // MARK: Test helpers

    /// The current (volatile) content of a file, or nil if there is no such file.
    func contents(_ path: String) -> [UInt8]? {
        lock.withLock {
            let (d, n) = SimulatedDisk.split(SimulatedDisk.normalized(path))
            guard let ino = state.directories[d]?.current[n] else { return nil }
            return state.inodes[ino]?.current
        }
    }
}

