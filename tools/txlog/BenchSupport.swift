// Shared pieces of `txlog bench`: options, clocks, CPU time, percentiles, threads, synthetic
// transaction-log records, the bench directory, and table/JSON output.

import ArgumentParser
import Foundation
import LogStore
import Synchronization

/// Options every bench subcommand takes.
struct BenchOptions: ParsableArguments {
    @Option(help: "Directory for the bench logs (default: a new temporary directory, removed afterwards).")
    var dir: String?
    @Option(help: "Seconds per measurement.") var seconds: Double = 1
    @Flag(help: "Print JSON instead of tables.") var json = false

    func validate() throws {
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600]") }
    }
}

/// The values of a comma-separated option such as `--writers 1,16`: every one must parse and be accepted
/// by `parse`, or the option is a usage error naming it (`allowed` says what is). A value that did not
/// parse was dropped silently (`--writers 1,x` ran one writer count; `--codecs lz4,zstd` ran lz4 alone).
func benchList<T>(_ text: String, option: String, allowed: String, _ parse: (String) -> T?) throws -> [T] {
    let values = try text.split(separator: ",", omittingEmptySubsequences: false).map { item -> T in
        let value = item.trimmingCharacters(in: .whitespaces)
        guard let parsed = parse(value) else { throw ValidationError("\(option): '\(value)' is not one of \(allowed)") }
        return parsed
    }
    guard !values.isEmpty else { throw ValidationError("\(option): \(allowed)") }
    return values
}

/// ``benchList(_:option:allowed:_:)`` for whole numbers in `range`.
func benchList(_ text: String, option: String, in range: ClosedRange<Int>) throws -> [Int] {
    try benchList(text, option: option, allowed: "\(range.lowerBound)...\(range.upperBound), comma-separated") { Int($0).flatMap { range.contains($0) ? $0 : nil } }
}

/// ``benchList(_:option:allowed:_:)`` for codecs.
func benchCodecs(_ text: String, option: String = "--codecs") throws -> [Codec] {
    try benchList(text, option: option, allowed: "none, lz4 or zlib:N, comma-separated") { Codec(parsing: $0) }
}

/// One table of results: printed aligned, or as JSON rows.
struct BenchSection {
    var name: String
    var columns: [String]
    var rows: [[String]] = []
    var json: [[String: Any]] = []
    var notes: [String] = []

    init(_ name: String, columns: [String]) {
        self.name = name
        self.columns = columns
    }

    mutating func add(_ row: [String], json: [String: Any]) {
        rows.append(row)
        self.json.append(json)
    }

    func printTable() {
        print("\n== \(name)")
        var widths = columns.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: max(0, widths[i] - c.count)) + c
            }.joined(separator: "  ")
        }
        print(line(columns))
        for row in rows { print(line(row)) }
        for n in notes { print("  note: \(n)") }
    }

    var jsonValue: [String: Any] { ["results": json, "notes": notes] }
}

/// Prints sections as tables (after a machine header) or as one JSON document.
func emit(_ sections: [BenchSection], options: BenchOptions, dir: String) {
    let machine = MachineInfo.collect(dir: dir)
    if options.json {
        var doc: [String: Any] = ["machine": machine.json, "seconds": options.seconds]
        for s in sections { doc[s.name] = s.jsonValue }
        printJSON(doc)
        return
    }
    print(machine.summary)
    for s in sections { s.printTable() }
}

/// What the figures were taken on.
struct MachineInfo {
    var cpus: Int
    var cpuModel: String
    var memoryGiB: Double
    var kernel: String
    var filesystem: String
    var load: String

    static func collect(dir: String) -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
        return MachineInfo(
            cpus: ProcessInfo.processInfo.activeProcessorCount, cpuModel: model,
            memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30), kernel: release,
            filesystem: filesystemName(dir), load: load)
    }

    var summary: String {
        String(format: "machine: %d CPUs (%@), %.1f GiB RAM, Linux %@; bench dir on %@; load average %@",
               cpus, cpuModel, memoryGiB, kernel, filesystem, load)
    }

    var json: [String: Any] {
        ["cpus": cpus, "cpuModel": cpuModel, "memoryGiB": memoryGiB, "kernel": kernel, "filesystem": filesystem, "loadAverage": load]
    }
}

/// The file system type of `path` (e.g. "ext4", "tmpfs"): the type of the longest mount point that
/// contains it, from /proc/self/mountinfo.
func filesystemName(_ path: String) -> String {
    let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
    var best: (mount: String, type: String)?
    for line in text.split(separator: "\n") {
        // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
        let halves = line.components(separatedBy: " - ")
        let left = halves[0].split(separator: " ")
        guard halves.count >= 2, left.count >= 5, let type = halves[1].split(separator: " ").first else { continue }
        let mount = String(left[4]).replacingOccurrences(of: "\\040", with: " ")
        let inside = mount == "/" || real == mount || real.hasPrefix(mount + "/")
        if inside, mount.count >= (best?.mount.count ?? -1) { best = (mount, String(type)) }
    }
    return best.map { "\($0.type) (mounted at \($0.mount))" } ?? "unknown"
}

/// The directory the benches write into; a temporary one is removed when done.
final class BenchDirectory {
    let root: String
    private let temporary: Bool

    init(_ requested: String?) throws {
        if let requested {
            root = requested
            temporary = false
        } else {
            root = NSTemporaryDirectory() + "txlog-bench-\(getpid())"
            temporary = true
        }
        do { try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            // Thrown as it was, the error left ArgumentParser's exit 1, which the exit-code table keeps for damage.
            let why = "cannot create the bench directory \(root): \((error as NSError).localizedDescription)"
            if requested != nil { throw ValidationError("--dir: " + why) }
            throw fail(LogError(.io, why))
        }
        // Registered only once it exists: SIGINT or SIGTERM removes it (see `BenchCleanup`).
        if temporary { BenchCleanup.register(root) }
    }

    /// A path under the root that does not exist yet (an earlier run's leftovers are removed). In a --dir
    /// given, it is removed if a signal ends the bench before `remove` (a temporary root goes whole).
    func fresh(_ name: String) -> String {
        let path = root + "/" + name
        try? FileManager.default.removeItem(atPath: path)
        if !temporary { BenchCleanup.register(path) }
        return path
    }

    func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        if !temporary { BenchCleanup.unregister(path) }
    }

    deinit {
        if temporary {
            try? FileManager.default.removeItem(atPath: root)
            BenchCleanup.unregister(root)
        }
    }
}

// MARK: Clocks and CPU time

@inline(__always) func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// User + system CPU seconds of the whole process (every thread, including the log's writer).
func processCPUSeconds() -> Double {
    var r = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &r)
    func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return secs(r.ru_utime) + secs(r.ru_stime)
}

/// The process's resident memory now, in bytes (/proc/self/statm), or 0 if it cannot be read. Sampled
/// before and after a measurement, it shows whether memory grows with the work done.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Context switches (voluntary + involuntary) of the whole process so far.
func processContextSwitches() -> Int {
    var r = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &r)
    return r.ru_nvcsw + r.ru_nivcsw
}

/// Latency percentiles in nanoseconds.
struct Percentiles {
    var p50: UInt64 = 0
    var p99: UInt64 = 0
    var p999: UInt64 = 0
    var max: UInt64 = 0

    init(_ samples: [UInt64]) {
        guard !samples.isEmpty else { return }
        let s = samples.sorted()
        func at(_ q: Double) -> UInt64 { s[min(s.count - 1, Int((Double(s.count) * q).rounded(.down)))] }
        p50 = at(0.50)
        p99 = at(0.99)
        p999 = at(0.999)
        max = s[s.count - 1]
    }

    var json: [String: Any] { ["p50us": us(p50), "p99us": us(p99), "p999us": us(p999), "maxUs": us(max)] }
}

func us(_ nanos: UInt64) -> Double { (Double(nanos) / 1000 * 10).rounded() / 10 }

func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

/// A rate with a k/M suffix, e.g. "5.21M".
func rate(_ v: Double) -> String {
    if v >= 1e6 { return fmt(v / 1e6, 2) + "M" }
    if v >= 1e4 { return fmt(v / 1e3, 1) + "k" }
    return fmt(v, 0)
}

// MARK: Threads

/// Phases shared by bench threads: warm-up, measuring, stopped.
final class BenchPhase: Sendable {
    static let warmup = 0, measuring = 1, stopped = 2
    private let value = Atomic<Int>(BenchPhase.warmup)
    var current: Int { value.load(ordering: .acquiring) }
    func set(_ p: Int) { value.store(p, ordering: .releasing) }
}

/// Runs `body(index)` on `count` dedicated threads (never the cooperative pool) and waits for all of them.
func runOnThreads(_ count: Int, whileRunning main: () -> Void = {}, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let t = Thread {
            body(i)
            group.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    main()
    group.wait()
}

func sleepSeconds(_ s: Double) { Thread.sleep(forTimeInterval: s) }

/// Runs a benchmark's driver (which sleeps through the measuring window and waits for its clients) on a
/// thread of its own, and suspends the calling task until it returns. txlog's entry point is async, so a
/// synchronous `run()` executes on a thread of Swift's cooperative pool, which has one thread per CPU: a
/// driver blocked there took one of the two threads of a 2-CPU machine away from the benchmark's client
/// tasks (found in a stack dump of `bench 2pc`: 64 client tasks on one pool thread).
func offCooperativePool(_ driver: @escaping () throws -> Void) async throws {
    final class Box: @unchecked Sendable {
        let driver: () throws -> Void
        init(_ driver: @escaping () throws -> Void) { self.driver = driver }
    }
    let box = Box(driver)
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
        let thread = Thread { done.resume(with: Result { try withBenchExitCodes(box.driver) }) }
        thread.stackSize = 4 << 20
        thread.start()
    }
}

/// Appends, recycling containers when the log is full (moves the base to the durable point).
@discardableResult
func appendRecycling(_ log: LogStore, _ bytes: UnsafeRawBufferPointer) throws -> LSN {
    while true {
        do { return try log.append(bytes) } catch let e as LogError where e.code == .logFull {
            try log.flush()
            try advanceBaseToDurable(log)
        }
    }
}

/// ``appendRecycling(_:_:)`` for a task: waits for the flush without blocking a cooperative-pool thread.
@discardableResult
func appendRecycling(_ log: LogStore, _ bytes: UnsafeRawBufferPointer) async throws -> LSN {
    while true {
        do { return try log.append(bytes) } catch let e as LogError where e.code == .logFull {
            try await log.flush()
            try advanceBaseToDurable(log)
        }
    }
}

/// Moves the log's base to its durable point, so full containers can be recycled.
private func advanceBaseToDurable(_ log: LogStore) throws {
    let durable = log.durableLSN
    if durable.isValid, durable > log.baseLSN { try log.advanceBase(to: durable) }
}

/// A bench that could not complete: a failed check (exit 1, as for damage), or an error that stopped it.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    /// The code of the `LogError` that stopped the bench, which picks the exit code (see `withBenchExitCodes`).
    var code: LogError.Code?
    init(_ description: String) { self.description = description }
    init(_ context: String, cause: any Error) {
        description = "\(context): \(cause)"
        code = (cause as? LogError)?.code
    }
}

/// Runs a bench, giving a `LogError` that stops it (I/O, log full, a refused option) its exit code from
/// the stable table in `txlog --help` with a one-line message. Thrown as they were, they all exited 1,
/// the code the table keeps for damage and failed checks.
func withBenchExitCodes<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as LogError {
        throw fail(e)
    } catch let e as BenchError {
        guard let code = e.code else { throw e }
        FileHandle.standardError.write(Data("txlog: \(escaped(e.description))\n".utf8))
        throw ToolExit.forCode(code, opening: false)
    }
}
