// Many threads and tasks appending, flushing, reading and moving the base of one log at once.
// Synchronous flushes run on Foundation threads (never on Swift's cooperative pool); async flushes run in
// tasks. Every record carries its writer and sequence number and checks itself.

import Foundation
import Testing
@testable import LogStore

@Suite("Concurrency")
struct ConcurrencyTests {
    struct Appended: Sendable {
        var lsn: LSN
        var writer: Int
        var sequence: Int
        var length: Int
    }

    static func length(_ writer: Int, _ sequence: Int) -> Int { 16 + (writer * 31 + sequence * 17) % 400 }

    /// Checks what a concurrent run returned against the log: unique LSNs, per-writer order, every record
    /// reads back as its own payload, and a cursor sees exactly these records in LSN order.
    static func verify(_ log: LogStore, _ perWriter: [[Appended]], _ when: Comment) throws {
        let all = perWriter.flatMap { $0 }
        #expect(Set(all.map(\.lsn)).count == all.count, "LSNs are unique: \(when)")
        for (w, mine) in perWriter.enumerated() {
            #expect(zip(mine, mine.dropFirst()).allSatisfy { $0.lsn < $1.lsn }, "writer \(w)'s LSNs increase: \(when)")
            #expect(mine.map(\.sequence) == Array(0..<mine.count), "writer \(w) lost appends: \(when)")
        }
        for a in all {
            let r = try log.read(a.lsn)
            #expect(r.data == LogTestKit.taggedPayload(writer: a.writer, sequence: a.sequence, length: a.length), "\(a.lsn): \(when)")
        }
        let records = try LogTestKit.allRecords(log)
        #expect(records.map(\.lsn) == all.map(\.lsn).sorted(), "the cursor sees exactly the appended records in order: \(when)")
        for r in records {
            #expect(LogTestKit.parseTagged(r.data) != nil, "record \(r.lsn) is intact: \(when)")
        }
    }

    // MARK: Threads with synchronous flush

    @Test("threads append and flush concurrently (group commit)", arguments: zip([16, 24], [1, 3]))
    func threadsAppendAndFlush(threads: Int, flushEvery: Int) async throws {
        let dir = LogTestKit.temporaryPath("threads")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 16384, codec: .lz4))
        let perThread = 250
        let results = LockedBox([[Appended]](repeating: [], count: threads))
        let flushes = LockedBox(0)
        let errors = LockedBox([String]())
        await LogTestKit.onThreads(threads) { w in
            var mine: [Appended] = []
            var flushed = 0
            do {
                for s in 0..<perThread {
                    let n = Self.length(w, s)
                    let lsn = try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: n))
                    mine.append(Appended(lsn: lsn, writer: w, sequence: s, length: n))
                    if s % flushEvery == flushEvery - 1 || s == perThread - 1 {
                        try log.flush(upTo: lsn)
                        flushed += 1
                        if log.durableLSN < lsn { errors.withLock { $0.append("flush(upTo: \(lsn)) returned below it") } }
                    }
                }
            } catch {
                errors.withLock { $0.append("writer \(w): \(error)") }
            }
            results.withLock { $0[w] = mine }
            flushes.withLock { $0 += flushed }
        }
        #expect(errors.snapshot.isEmpty, "\(errors.snapshot.prefix(5))")
        let perWriter = results.snapshot
        #expect(perWriter.allSatisfy { $0.count == perThread })
        let maxLSN = try #require(perWriter.flatMap { $0 }.map(\.lsn).max())
        #expect(log.durableLSN >= maxLSN)
        let stats = log.info().statistics
        let flushCount = flushes.snapshot
        #expect(flushCount == threads * ((perThread + flushEvery - 1) / flushEvery))
        #expect(stats.syncs > 0)
        #expect(stats.syncs < UInt64(flushCount), "group commit: \(stats.syncs) syncs for \(flushCount) flushes")
        #expect(stats.flushRequests <= UInt64(flushCount))
        try Self.verify(log, perWriter, "open")
        try log.close()
        let again = try LogStore.open(at: dir)
        try Self.verify(again, perWriter, "reopened")
        try again.close()
    }

    @Test("threads from DispatchQueue.concurrentPerform append and flush")
    func concurrentPerform() async throws {
        let dir = LogTestKit.temporaryPath("perform")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 4 << 20, blockSize: 8192, codec: .zlib(level: 1)))
        let writers = 16
        let results = LockedBox([[Appended]](repeating: [], count: writers))
        let errors = LockedBox([String]())
        // concurrentPerform blocks its caller, so it runs on a Foundation thread, not on the test's task.
        await LogTestKit.onThreads(1) { _ in
            DispatchQueue.concurrentPerform(iterations: writers) { w in
                var mine: [Appended] = []
                do {
                    for s in 0..<120 {
                        let n = Self.length(w, s)
                        let lsn = try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: n))
                        mine.append(Appended(lsn: lsn, writer: w, sequence: s, length: n))
                        if s % 4 == 3 { try log.flush(upTo: lsn) }
                    }
                    try log.flush()
                } catch {
                    errors.withLock { $0.append("writer \(w): \(error)") }
                }
                results.withLock { $0[w] = mine }
            }
        }
        #expect(errors.snapshot.isEmpty, "\(errors.snapshot.prefix(5))")
        try Self.verify(log, results.snapshot, "open")
        try log.close()
        let again = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
        try Self.verify(again, results.snapshot, "reopened read-only")
        try again.close()
    }

    @Test("group commit with a linger window")
    func lingeringGroupCommit() async throws {
        let dir = LogTestKit.temporaryPath("linger")
        defer { LogTestKit.remove(dir) }
        var openOptions = LogOpenOptions()
        openOptions.groupCommit.lingerNanoseconds = 300_000
        let log = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: 4 << 20, blockSize: 8192, codec: .lz4), openOptions: openOptions)
        let writers = 16
        let results = LockedBox([[Appended]](repeating: [], count: writers))
        let errors = LockedBox([String]())
        await LogTestKit.onThreads(writers) { w in
            var mine: [Appended] = []
            do {
                for s in 0..<60 {
                    let n = Self.length(w, s)
                    let lsn = try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: n))
                    mine.append(Appended(lsn: lsn, writer: w, sequence: s, length: n))
                    try log.flush(upTo: lsn)
                }
            } catch {
                errors.withLock { $0.append("writer \(w): \(error)") }
            }
            results.withLock { $0[w] = mine }
        }
        #expect(errors.snapshot.isEmpty, "\(errors.snapshot.prefix(5))")
        let syncs = log.info().statistics.syncs
        #expect(syncs < UInt64(writers * 60), "group commit: \(syncs) syncs for \(writers * 60) flushes")
        try Self.verify(log, results.snapshot, "open")
        try log.close()
    }

    @Test("back-pressure: appends beyond maxDirtyBytes without any flush keep going")
    func backPressure() async throws {
        let dir = LogTestKit.temporaryPath("pressure")
        defer { LogTestKit.remove(dir) }
        var openOptions = LogOpenOptions()
        openOptions.groupCommit.maxDirtyBytes = 64 * 1024
        openOptions.groupCommit.maxBatchBytes = 32 * 1024
        let log = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 4096, codec: .none), openOptions: openOptions)
        let done = LockedBox([LSN]())
        let failure = LockedBox<String?>(nil)
        // Two appending threads write 2 MiB, 32 times the dirty limit, and never flush. If the writer did not
        // drain sealed blocks on its own, they would wait forever.
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await LogTestKit.onThreads(2) { w in
                    var mine: [LSN] = []
                    do {
                        for s in 0..<256 { mine.append(try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: 4000))) }
                    } catch {
                        failure.withLock { $0 = "\(error)" }
                    }
                    done.withLock { $0 += mine }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(nanoseconds: 60_000_000_000)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        try #require(finished, "appends under back-pressure did not finish within 60 s (the writer does not drain without a flush)")
        #expect(failure.snapshot == nil)
        #expect(done.snapshot.count == 512)
        #expect(log.info().statistics.blocksWritten > 0, "the writer wrote blocks without any flush request")
        try await log.flush()
        for lsn in done.snapshot { #expect(LogTestKit.parseTagged(try log.read(lsn).data) != nil) }
        try log.close()
    }

    @Test("read-only opens while another instance writes see every record flushed before they opened")
    func readOnlyOpenWhileWriting() async throws {
        let dir = LogTestKit.temporaryPath("rowrite")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 6, blockSize: 4096, codec: .lz4))
        let flushed = LockedBox([Appended]())
        let stop = LockedBox(false)
        let errors = LockedBox([String]())
        let opens = LockedBox(0)
        await LogTestKit.onThreads(2) { t in
            if t == 0 {
                var s = 0
                do {
                    // Roughly 2.5 MB: several container switches while the reader opens the log.
                    while s < 1200 {
                        let n = 1500 + (s * 37) % 1000
                        let lsn = try log.append(LogTestKit.taggedPayload(writer: 0, sequence: s, length: n))
                        if s % 3 == 2 {
                            try log.flush(upTo: lsn)
                            flushed.withLock { $0.append(Appended(lsn: lsn, writer: 0, sequence: s, length: n)) }
                        }
                        // Four times, the writer lets the reader finish one more open: on a loaded machine
                        // the writer could otherwise be done before the reader had opened the log more
                        // than a few times (the count below depended on the machine's speed).
                        if s % 300 == 299 {
                            let target = opens.snapshot + 1
                            let deadline = Date().addingTimeInterval(60)
                            while opens.snapshot < target, errors.snapshot.isEmpty, Date() < deadline { usleep(1000) }
                        }
                        s += 1
                    }
                } catch {
                    errors.withLock { $0.append("writer: \(error)") }
                }
                stop.withLock { $0 = true }
            } else {
                while !stop.snapshot {
                    let known = flushed.snapshot
                    do {
                        let reader = try LogStore.open(at: dir, options: LogOpenOptions(readOnly: true))
                        for a in known.suffix(20) {
                            let r = try reader.read(a.lsn)
                            if r.data != LogTestKit.taggedPayload(writer: 0, sequence: a.sequence, length: a.length) {
                                errors.withLock { $0.append("read-only open: \(a.lsn) differs") }
                            }
                        }
                        if let last = known.last, reader.lastLSN < last.lsn {
                            errors.withLock { $0.append("read-only open ended at \(reader.lastLSN), before the flushed \(last.lsn)") }
                        }
                        try reader.close()
                        opens.withLock { $0 += 1 }
                    } catch {
                        errors.withLock { $0.append("read-only open: \(error)") }
                    }
                }
            }
        }
        #expect(errors.snapshot.isEmpty, "\(errors.snapshot.count) errors, first: \(errors.snapshot.prefix(5))")
        #expect(opens.snapshot > 3)
        try log.close()
    }

    // MARK: Async tasks

    @Test("32 tasks append and await flush(upTo:)")
    func asyncTasks() async throws {
        let dir = LogTestKit.temporaryPath("tasks")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 16384, codec: .lz4))
        let tasks = 32
        let perTask = 150
        let perWriter = try await withThrowingTaskGroup(of: (Int, [Appended]).self) { group in
            for w in 0..<tasks {
                group.addTask {
                    var mine: [Appended] = []
                    for s in 0..<perTask {
                        let n = Self.length(w, s)
                        let lsn = try log.append(LogTestKit.taggedPayload(writer: w, sequence: s, length: n))
                        mine.append(Appended(lsn: lsn, writer: w, sequence: s, length: n))
                        try await log.flush(upTo: lsn)
                        #expect(log.durableLSN >= lsn)
                    }
                    return (w, mine)
                }
            }
            var out = [[Appended]](repeating: [], count: tasks)
            for try await (w, mine) in group { out[w] = mine }
            return out
        }
        #expect(perWriter.allSatisfy { $0.count == perTask })
        let stats = log.info().statistics
        #expect(stats.syncs < UInt64(tasks * perTask), "group commit: \(stats.syncs) syncs for \(tasks * perTask) flushes")
        try Self.verify(log, perWriter, "open")
        try log.close()
        let again = try LogStore.open(at: dir)
        try Self.verify(again, perWriter, "reopened")
        try again.close()
    }

    // MARK: Readers while writers write

    @Test("readers and a tailing cursor run while writers append and flush")
    func readersWhileWriting() async throws {
        let dir = LogTestKit.temporaryPath("readers")
        defer { LogTestKit.remove(dir) }
        var openOptions = LogOpenOptions()
        openOptions.readCacheBytes = 256 * 1024  // small, so readers go to disk too
        let log = try LogStore.create(
            at: dir, options: LogTestKit.options(containerSize: 8 << 20, blockSize: 8192, codec: .lz4), openOptions: openOptions)
        let writers = 8
        let perWriter = 400
        let published = LockedBox([Appended]())
        let writersDone = LockedBox(0)
        let errors = LockedBox([String]())
        let reads = LockedBox(0)
        let tailSeen = LockedBox([LSN]())

        await LogTestKit.onThreads(writers + 4 + 1) { t in
            if t < writers {
                defer { writersDone.withLock { $0 += 1 } }
                do {
                    for s in 0..<perWriter {
                        let n = Self.length(t, s)
                        let lsn = try log.append(LogTestKit.taggedPayload(writer: t, sequence: s, length: n))
                        published.withLock { $0.append(Appended(lsn: lsn, writer: t, sequence: s, length: n)) }
                        if s % 2 == 1 { try log.flush(upTo: lsn) }
                    }
                    try log.flush()
                } catch {
                    errors.withLock { $0.append("writer \(t): \(error)") }
                }
            } else if t < writers + 4 {
                // Random point reads of anything already appended (in memory or on disk).
                var rng = SystemRandomNumberGenerator()
                var n = 0
                while true {
                    let done = writersDone.snapshot == writers
                    let pick = published.withLock { $0.isEmpty ? nil : $0[Int.random(in: 0..<$0.count, using: &rng)] }
                    if let a = pick {
                        do {
                            let r = try log.read(a.lsn)
                            if r.data != LogTestKit.taggedPayload(writer: a.writer, sequence: a.sequence, length: a.length) {
                                errors.withLock { $0.append("read \(a.lsn) returned another record") }
                            }
                        } catch {
                            errors.withLock { $0.append("read \(a.lsn): \(error)") }
                        }
                        n += 1
                    }
                    if done || n > 20_000 { break }
                }
                reads.withLock { $0 += n }
            } else {
                // A cursor that follows the log as it grows.
                do {
                    var cursor = try log.records()
                    var seen: [LSN] = []
                    var idle = 0
                    while true {
                        let done = writersDone.snapshot == writers
                        if let r = try cursor.next() {
                            if let previous = seen.last, r.lsn <= previous {
                                errors.withLock { $0.append("cursor went from \(previous) to \(r.lsn)") }
                            }
                            if LogTestKit.parseTagged(r.data) == nil { errors.withLock { $0.append("cursor: record \(r.lsn) damaged") } }
                            seen.append(r.lsn)
                            continue
                        }
                        if done {
                            idle += 1
                            if idle > 2 { break }
                        }
                        usleep(200)
                    }
                    tailSeen.withLock { $0 = seen }
                } catch {
                    errors.withLock { $0.append("cursor: \(error)") }
                }
            }
        }
        #expect(errors.snapshot.isEmpty, "\(errors.snapshot.prefix(5))")
        #expect(reads.snapshot > 0)
        let all = published.snapshot
        #expect(all.count == writers * perWriter)
        #expect(tailSeen.snapshot == all.map(\.lsn).sorted(), "the tailing cursor saw every record exactly once, in order")
        var byWriter = [[Appended]](repeating: [], count: writers)
        for a in all { byWriter[a.writer].append(a) }
        for w in 0..<writers { byWriter[w].sort { $0.sequence < $1.sequence } }
        try Self.verify(log, byWriter, "after the run")
        try log.close()
    }

    // MARK: Moving the base concurrently

    @Test("concurrent advanceBase never moves the base backwards")
    func concurrentAdvanceBase() async throws {
        let dir = LogTestKit.temporaryPath("advance")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 4 << 20, blockSize: 8192, codec: .lz4))
        let threads = 8
        var violations: [String] = []
        var appended = 0
        for round in 0..<20 {
            // Eight increasing targets above the current base, requested at the same moment in random order.
            // In odd rounds the targets are not durable yet (advanceBase may have to flush first).
            var fresh: [LSN] = []
            for _ in 0..<(threads * 20 + 1) {
                fresh.append(try log.append(LogTestKit.textPayload(appended, length: 40)))
                appended += 1
            }
            if round % 2 == 0 { try await log.flush() }
            let targets = (0..<threads).map { fresh[1 + $0 * 20] }.shuffled()
            let succeeded = LockedBox([LSN]())
            let unexpected = LockedBox([String]())
            await LogTestKit.onThreads(threads) { t in
                do {
                    try log.advanceBase(to: targets[t])
                    succeeded.withLock { $0.append(targets[t]) }
                } catch let e as LogError where e.code == .invalidArgument {
                    // Refused because the base already passed this target: allowed.
                } catch {
                    unexpected.withLock { $0.append("\(error)") }
                }
            }
            violations += unexpected.snapshot.map { "round \(round): \($0)" }
            let base = log.baseLSN
            if let highest = succeeded.snapshot.max(), base < highest {
                violations.append(
                    "round \(round): advanceBase(to: \(highest)) succeeded but the base is \(base) (went backwards; \(succeeded.snapshot.count) calls succeeded)")
            }
            if base < targets.min()! { violations.append("round \(round): base \(base) below every target") }
        }
        #expect(violations.isEmpty, "\(violations.count) violations, first: \(violations.prefix(3))")
        try await log.flush()
        let finalBase = log.baseLSN
        try log.close()
        let again = try LogStore.open(at: dir)
        #expect(again.baseLSN == finalBase)
        try again.close()
    }

    @Test("appenders on a full log advance the base concurrently (the txlog stress pattern)")
    func appendersAdvanceBaseWhenFull() async throws {
        let dir = LogTestKit.temporaryPath("fullbase")
        defer { LogTestKit.remove(dir) }
        let log = try LogStore.create(at: dir, options: LogTestKit.options(containerSize: 512 * 1024, containerCount: 3, blockSize: 4096, codec: .none))
        let writers = 8
        let perWriter = 250
        let results = LockedBox([[Appended]](repeating: [], count: writers))
        let errors = LockedBox([String]())
        await LogTestKit.onThreads(writers) { w in
            var mine: [Appended] = []
            do {
                for s in 0..<perWriter {
                    let n = 1000 + (w * 977 + s * 131) % 3000
                    let payload = LogTestKit.taggedPayload(writer: w, sequence: s, length: n)
                    var lsn: LSN?
                    var attempts = 0
                    while lsn == nil {
                        do {
                            lsn = try log.append(payload)
                        } catch let e as LogError where e.code == .logFull {
                            attempts += 1
                            if attempts > 1000 { throw e }
                            try log.flush()
                            let durable = log.durableLSN
                            if durable > log.baseLSN {
                                do { try log.advanceBase(to: durable) } catch let e as LogError where e.code == .invalidArgument && log.baseLSN >= durable {
                                    // Another writer moved the base past this target first.
                                }
                            }
                        }
                    }
                    mine.append(Appended(lsn: lsn!, writer: w, sequence: s, length: n))
                    if s % 4 == 3 { try log.flush(upTo: lsn!) }
                }
            } catch {
                errors.withLock { $0.append("writer \(w): \(error)") }
            }
            results.withLock { $0[w] = mine }
        }
        #expect(errors.snapshot.isEmpty, "\(errors.snapshot.prefix(5))")
        try await log.flush()
        let base = log.baseLSN
        let live = results.snapshot.flatMap { $0 }.filter { $0.lsn >= base }
        #expect(!live.isEmpty)
        for a in live {
            #expect(try log.read(a.lsn).data == LogTestKit.taggedPayload(writer: a.writer, sequence: a.sequence, length: a.length))
        }
        #expect(try LogTestKit.allRecords(log).map(\.lsn) == live.map(\.lsn).sorted())
        try log.close()
    }
}
