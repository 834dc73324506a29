import ArgumentParser
import Foundation
import LogStore
import TransactionManager
import TransactionalKV

extension RecordType: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "data": self = .data
        case "restart": self = .restart
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["data", "restart"] }
}

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump", abstract: "Print records with their previous and undo-next links (read-only).",
        discussion: """
            Prints records in LSN order from the oldest record the log holds (its base, or an archive tail below \
            it: records kept for archiving are marked) or --from, to the end (or --to): one line each \
            with LSN, type, stream, previous LSN, undo-next LSN, length and the data: decoded for the records of \
            transaction managers (tm: ...) and key-value stores (kv ...), else a preview of the bytes. --hex adds \
            a hex dump of each record's data; --json prints one JSON object per line (schema: \
            docs/tools/txlog.md). --xid and --kind select decoded records; --stats prints counts and bytes per \
            stream and record kind instead of the records. --follow keeps reading the live log after the end, \
            like pg_waldump --follow. Stops with exit code 1 at a damaged block, after printing the records \
            before it (with --stats, their counts).

            Exit codes: 0 success, 1 corruption found, 2 cannot open, 3 (--follow) the records to resume from \
            were recycled, 4 I/O error, 64 usage error (all: txlog --help).

            Examples:
              txlog dump LOG --limit 20
              txlog dump LOG --stream ktm --type restart
              txlog dump LOG --from 1:4096:0 --to 1:65536:0 --hex
              txlog dump LOG --xid 7e000000-0000-4000-8000-0000000000f1
              txlog dump LOG --kind tm:outcome --stats
              txlog dump LOG --follow --stream ktm
              txlog dump LOG --json | jq -r 'select(.streamID == 1) | .lsn'
            """)

    @Argument(help: "The log directory.") var path: String
    @Option(help: "First LSN, a record's (default: the oldest the log holds, its base or a lower archive tail; with --stream, the stream's base or a lower archive tail).") var from: LSN?
    @Option(help: "Stop after this LSN.") var to: LSN?
    @Option(help: "Only this stream: its name, 'default', or its numeric id.") var stream: String?
    @Option(help: "Only records of this type: data or restart.") var type: RecordType?
    @Option(help: "Only decoded records that name this transaction (TM and key-value records, in every stream).") var xid: GUID?
    @Option(help: "Only records of this decoded kind: tm:KIND, kv:KIND, KIND (either), or raw (not decoded).") var kind: String?
    @Option(help: "At most this many records (counted after the filters).") var limit: Int?
    @Flag(help: "Add a hex dump of each record's data.") var hex = false
    @Flag(help: "Print one JSON object per line.") var json = false
    @Flag(help: "Print counts and data bytes per stream and per record kind of the selected records, not the records.") var stats = false
    @Flag(help: "At the end, keep reading the live log and print records as they are written; stop on SIGINT or SIGTERM (exit 0).")
    var follow = false
    @Option(help: "With --follow: seconds between reads of the log.") var interval = 0.1
    @Option(help: "With --follow: stop after this many seconds without a new record.") var untilIdle: Double?

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be at least 0") }
        if let from, let to, to < from { throw ValidationError("--to \(to) is before --from \(from)") }
        if let kind, !DumpDecoder.kindArguments.contains(kind) {
            throw ValidationError("--kind \(kind) is not a record kind: raw, tm:KIND (\(DumpDecoder.tmKinds.joined(separator: ", "))), kv:KIND (\(DumpDecoder.kvKinds.joined(separator: ", ")))")
        }
        if stats && hex { throw ValidationError("--hex shows records; --stats shows none") }
        // A NaN or huge interval would trap converting to nanoseconds; an hour is plenty.
        guard interval.isFinite, interval > 0, interval <= 3600 else { throw ValidationError("--interval must be more than 0 and at most 3600 seconds") }
        if let untilIdle, !(untilIdle.isFinite && untilIdle >= 0 && untilIdle <= 1e9) { throw ValidationError("--until-idle must be 0 to 1e9 seconds") }
        if !follow, untilIdle != nil { throw ValidationError("--until-idle needs --follow") }
    }

    /// Where the dump stands: the records printed so far and how far it has read.
    private struct Progress {
        var printed = 0
        /// Where the next read goes on: the last record read, or, after a read that reached the end of the
        /// log, the log's last record then (a stream's cursor passed every record up to it). So a dump of a
        /// quiet stream does not fall below the base of a log that other streams keep recycling.
        var resume: LSN?
        /// `--to` or `--limit` reached: nothing more to print.
        var done = false
        var stats = DumpStats()
        /// Records read (selected or not) in the last pass.
        var read = 0
        /// The last pass stopped where the writer had recycled records since the open: the dump is behind,
        /// so the next pass comes at once.
        var behind = false
        /// The last record read (any stream).
        var lastRead: LogRecord?
        /// The epoch of the log the dump read its records in: a writer that opened the log since starts another.
        var epoch: UInt32 = 0
        /// After the log was opened again: the last record read (nil: none yet), which that log must still
        /// hold, and the epoch it was read in, checked before the dump goes on.
        var verify: (record: LogRecord?, epoch: UInt32)?
    }

    func run() throws {
        let stop = follow ? DumpStopSignal.install() : nil
        var log = try openForReading(path)
        var decoder = DumpDecoder(log)
        let streamID = try resolveStream(log)
        var progress = Progress()
        let info = log.info()
        progress.epoch = info.epoch
        let bar = ProgressBar("dump", workBytes: follow ? 0 : info.usedBytes)
        defer { bar.finish() }
        do {
            try pass(log, decoder, streamID, &progress, stop, bar: bar)
            if follow {
                var idleSince = DispatchTime.now().uptimeNanoseconds
                while !progress.done, !(stop?.requested ?? false) {
                    fflush(nil)
                    if let untilIdle, Double(DispatchTime.now().uptimeNanoseconds - idleSince) / 1e9 >= untilIdle { break }
                    if !progress.behind { stop?.sleep(seconds: interval) }
                    if stop?.requested ?? false { break }
                    // A read-only log sees the log as its open (or last refresh) found it: catch up with what
                    // was written since, reading only that, and go on after the last record read. Where it
                    // cannot catch up in place (or fails for a moment while the writer changes the base
                    // file), open the log again.
                    do {
                        if try log.refresh() { decoder = DumpDecoder(log) }
                    } catch {
                        try? log.close()
                        guard let reopened = try reopen(stop) else { break }
                        // LSNs name records of one log only: after another log took the path, going on after
                        // the last LSN read would print that log's records as the rest of this one's.
                        guard reopened.info().logID == info.logID else {
                            try? reopened.close()
                            throw fail(
                                LogError(.invalidState, "\(path) is another log now (replaced since the dump began): the dump cannot go on", path: path),
                                opening: true)
                        }
                        log = reopened
                        decoder = DumpDecoder(log)
                        // Once: a log opened again and again before the check is done keeps the first's epoch.
                        if progress.verify == nil { progress.verify = (progress.lastRead, progress.epoch) }
                    }
                    (progress.read, progress.behind) = (0, false)
                    try pass(log, decoder, streamID, &progress, stop, bar: bar)
                    if progress.read > 0 { idleSince = DispatchTime.now().uptimeNanoseconds }
                }
            }
        } catch let e as ExitCode {
            bar.finish()
            throw e
        } catch {
            bar.finish()
            // As `stats` and `verify` do, what was counted before the damage (or I/O error) is printed, then
            // the error (stderr) and its exit code.
            if stats {
                progress.stats.stoppedBy = (error as? LogError)?.description ?? "\(error)"
                progress.stats.printCounts(json: json, decoder.names)
                fflush(nil)
            }
            throw fail(error)
        }
        if stats {
            progress.stats.printCounts(json: json, decoder.names)
        }
        try? log.close()
    }

    /// The id of `--stream`, or nil for every stream; an unknown name is a usage error.
    private func resolveStream(_ log: LogStore) throws -> UInt16? {
        guard let stream else { return nil }
        let streams = log.streams()
        let wanted = stream == "default" ? "" : stream
        if let s = streams.first(where: { $0.name == wanted }) { return s.id }
        if let id = UInt16(stream), streams.contains(where: { $0.id == id }) { return id }
        FileHandle.standardError.write(Data("txlog: invalid-argument: no stream named \(escaped(stream)) (see txlog streams)\n".utf8))
        throw ToolExit.usage
    }

    /// Opens the log again for the next read of `--follow`, when a refresh could not catch up. An open can fail for a moment while a writer
    /// changes the base file or recycles a container under it: it is tried again, a few times, before the
    /// error counts. Nil when a stop was asked for meanwhile.
    private func reopen(_ stop: DumpStopSignal?) throws -> LogStore? {
        var attempt = 0
        while true {
            do {
                var options = LogOpenOptions(readOnly: true)
                options.readCacheBytes = 32 << 20
                return try LogStore.open(at: path, options: options)
            } catch {
                attempt += 1
                if stop?.requested ?? false { return nil }
                if attempt >= 5 { throw fail(error, opening: true) }
                stop?.sleep(seconds: interval)
            }
        }
    }

    /// Prints (or counts) the selected records from where the dump stands to the end of what `log` holds.
    /// A stop asked for (`--follow`'s SIGINT or SIGTERM) ends it after the record being printed: a read of a
    /// long log, or one catching up after a burst, may have many left.
    private func pass(
        _ log: LogStore, _ decoder: DumpDecoder, _ streamID: UInt16?, _ p: inout Progress, _ stop: DumpStopSignal?, bar: ProgressBar
    ) throws {
        let info = log.info()
        let data = info.containers.filter { $0.state != .inactive }.map(\.logicalID)
        let (low, high) = (data.min() ?? 1, data.max() ?? 1)
        try verifyReopened(log, epoch: info.epoch, &p)
        if p.verify == nil { p.epoch = info.epoch }
        if let last = p.resume {
            // A stream's cursor starts at the log's base when asked for an LSN below what the log keeps
            // readable (its base, or an archive tail below it): check here, or records recycled before they
            // were read would go unnoticed.
            let floor = log.oldestReadableLSN
            if last < floor { throw resumeLost(LogError(.notFound, "\(last) is below the oldest readable LSN \(floor)"), after: last, log: log) }
            // This open has not seen as far as the last one (it caught the end mid-write, or the check above
            // waits for it): nothing new yet.
            if last > log.lastLSN { return }
        }
        let start = p.resume ?? from ?? .null
        var cursor: LogCursor
        do {
            if let streamID {
                // With --follow the stream may be deleted (or its name given to a new stream) since the dump began.
                guard let name = decoder.names[streamID] else { throw LogError(.notFound, "stream \(streamID) was deleted") }
                let handle = try name.isEmpty ? log.defaultStream : log.openStream(name)
                cursor = try start == .null ? Self.oldestReadable(log, handle) : handle.records(from: start)
            } else if start == .null {
                cursor = try Self.oldestReadable(log)
            } else {
                cursor = try log.records(from: start)
            }
        } catch let e as LogError where e.code == .notFound && p.resume != nil {
            throw resumeLost(e, after: p.resume!, log: log)
        } catch let e as LogError where e.code == .notFound && from != nil {
            throw badFrom(e)
        }
        let base = log.baseLSN
        p.stats.base = base
        var firstRead = true
        while !p.done, !(stop?.requested ?? false), let r = try nextRecord(&cursor, first: firstRead, &p, log: log) {
            firstRead = false
            if let last = p.resume, r.lsn <= last { continue }
            p.resume = r.lsn
            p.lastRead = r
            p.read += 1
            if let to, r.lsn > to {
                p.done = true
                break
            }
            if let limit, p.printed >= limit {
                p.done = true
                break
            }
            if let type, r.type != type { continue }
            if let streamID, r.stream != streamID { continue }
            let d = decoder.decode(r)
            if let xid, !d.transactions.contains(xid) { continue }
            if let kind, !DumpDecoder.kind(d.kind, matches: kind) { continue }
            p.printed += 1
            let belowBase = base != .null && r.lsn < base
            if !follow {
                let span = Double(high - low + 1)
                bar.update((Double(r.lsn.container) - Double(low) + Double(r.lsn.blockOffset) / Double(info.containerSize)) / span)
            }
            if stats {
                p.stats.add(r, d, belowBase: belowBase)
            } else if json {
                printLine(r, decoder.names, d, belowBase: belowBase)
            } else {
                let preview = d.tm.map { "tm: \(escaped($0.text))" } ?? d.kv.map { escaped($0.text) } ?? printable(r.data.prefix(48))
                let note = (d.note.map { "\t[\(escaped($0))]" } ?? "") + (belowBase ? "\t[\(Self.belowBaseNote)]" : "")
                print("\(r.lsn)\t\(r.type)\tstream \(r.stream)\tprev \(r.previous)\tundo \(r.undoNext)\t\(r.data.count) B\t\(preview)\(note)")
                if hex { print(hexDump(r.data), terminator: "") }
            }
            if let limit, p.printed >= limit { p.done = true }
        }
        if !p.done, !p.behind, log.lastLSN.isValid, p.resume.map({ $0 < log.lastLSN }) ?? true { p.resume = log.lastLSN }
    }

    /// After the log was opened again (its refresh could not catch up): the log must still hold the last record
    /// read, else the dump stops (exit 2) rather than go on after an LSN whose records are not the ones it read.
    /// In the same writer session the check waits until the log opened again has read as far (it may have
    /// caught the end mid-write). After a new epoch it is decided at once: a writer that opened the log since
    /// recovered it on its own, and where it ended, its own records follow. A crash may have lost blocks the
    /// dump had read from the page cache before they were durable; that writer ended before them and, idle,
    /// may never write as far. And what it writes after that end may be below the LSN the dump reached
    /// (records of other streams that `--stream` skipped were lost): the dump goes on after the last record
    /// it read, not after that LSN.
    private func verifyReopened(_ log: LogStore, epoch: UInt32, _ p: inout Progress) throws {
        guard let check = p.verify else { return }
        let newWriter = epoch != check.epoch
        guard let expected = check.record else {
            // Nothing read yet: after a new writer, every record of the log now is one the dump has not read.
            if newWriter { p.resume = nil }
            p.verify = nil
            return
        }
        if !newWriter, expected.lsn > log.lastLSN { return }
        p.verify = nil
        func lost(_ why: String) -> ExitCode {
            fail(
                LogError(
                    .invalidState,
                    "\(path) no longer holds the record at \(expected.lsn) the dump read (\(why), after a crash lost blocks that were not durable yet): the dump cannot go on",
                    lsn: expected.lsn, path: path),
                opening: true)
        }
        if expected.lsn > log.lastLSN { throw lost("a writer that opened the log since recovered it only to \(log.lastLSN)") }
        if expected.lsn >= log.oldestReadableLSN, (try? log.read(expected.lsn)) != expected {
            throw lost("a writer that opened the log since recovered less and wrote other records there")
        }
        if newWriter { p.resume = expected.lsn }
    }

    /// The cursor's next record; nil at the end, and also where a live writer has recycled the records
    /// since the dump began (`notFound` from the cursor): that is noted on stderr, not damage. With
    /// `--follow`, the next read opens the log again and finds out whether records were lost.
    /// A `--from` that names no record (below the log's base, or where no record is; a stream's cursor may
    /// find that only at its first read) is a bad value, exit 64: exit 1 says the log is damaged.
    private func nextRecord(_ cursor: inout LogCursor, first: Bool, _ p: inout Progress, log: LogStore) throws -> LogRecord? {
        do { return try cursor.next() } catch let e as LogError where e.code == .notFound && first && p.resume != nil {
            throw resumeLost(e, after: p.resume!, log: log)
        } catch let e as LogError where e.code == .notFound && first && from != nil {
            throw badFrom(e)
        } catch let e as LogError where e.code == .notFound {
            if !follow { FileHandle.standardError.write(Data("txlog: dump stopped: \(escaped(e.message))\n".utf8)) }
            p.behind = true
            return nil
        }
    }

    /// Said `invalid-argument`, as every usage error (docs/tools/txlog.md, "Clear"): it said the cursor's
    /// `not-found` with exit 64, where the same mistake past the end of the log said `invalid-argument`.
    private func badFrom(_ e: LogError) -> ExitCode {
        var usage = e
        usage.code = .invalidArgument
        FileHandle.standardError.write(Data("txlog: \(escaped(usage.description)) (--from must be the LSN of a record in the log; see txlog dump without --from)\n".utf8))
        return ToolExit.usage
    }

    /// `--follow` cannot go on after `last`: the writer recycled it (the log's base passed it) before the
    /// records after it were read, or the stream was deleted. Records may have been missed: exit 3.
    private func resumeLost(_ e: LogError, after last: LSN, log: LogStore) -> ExitCode {
        fflush(nil)
        let (floor, base) = (log.oldestReadableLSN, log.baseLSN)
        // The limit is the base, or the lowest archive tail when it keeps records below the base.
        let limit = floor != base ? "the lowest archive tail moved to \(floor) (the log's base is \(base))" : "the log's base moved to \(base)"
        let why = last < floor
            ? "\(limit), past where the dump had read to (\(last)): the records after it were recycled before the dump read them"
            : escaped(e.description)
        FileHandle.standardError.write(Data("txlog: not-found: dump --follow cannot go on after \(last): \(why)\n".utf8))
        return ToolExit.notFound
    }

    private func printLine(_ r: LogRecord, _ names: [UInt16: String], _ d: DecodedRecord, belowBase: Bool) {
        var object: [String: Any] = [
            "lsn": r.lsn.description, "type": "\(r.type)", "stream": Int(r.stream), "streamID": Int(r.stream), "streamName": names[r.stream] ?? NSNull(),
            "previous": r.previous.description, "undoNext": r.undoNext.description, "length": r.data.count,
            "data": lowercaseHex(r.data),
            "kind": d.kind ?? NSNull(), "transaction": d.transaction?.description ?? NSNull(),
        ]
        if let tm = d.tm {
            object["tm"] = [
                "kind": tm.kind, "clock": tm.clock, "text": tm.text, "transaction": tm.transactionID?.description ?? NSNull(),
                "outcome": tm.outcome?.description ?? NSNull(), "enlistments": tm.enlistments ?? NSNull(),
            ] as [String: Any]
        }
        if let kv = d.kv {
            object["kv"] = kv.text
            object["kvRecord"] = ["kind": kv.kind, "transaction": kv.transactionID?.description ?? NSNull(), "writes": kv.writes ?? NSNull()] as [String: Any]
        }
        if let note = d.note { object["note"] = note }
        if belowBase { object["belowBase"] = true }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }

    private func printable<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(bytes.map { (0x20..<0x7f).contains($0) ? Character(UnicodeScalar($0)) : "." })
    }

    /// `xxd -g1` style: offset, 16 bytes in hex, the printable characters.
    private func hexDump(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let row = bytes[i..<min(i + 16, bytes.count)]
            let hexes = row.map { String(format: "%02x", $0) }.joined(separator: " ")
            out += "    " + String(format: "%08x: ", i) + pad(hexes, 47) + "  " + printable(row) + "\n"
            i += 16
        }
        return out
    }
}

/// `bytes` as lowercase hexadecimal. `String(format:)` per byte made `dump --json` spend seconds on a few
/// MiB of records (too slow for `--follow` to keep up with a busy writer).
func lowercaseHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
        for (i, b) in bytes.enumerated() {
            out[2 * i] = digits[Int(b >> 4)]
            out[2 * i + 1] = digits[Int(b & 15)]
        }
        return bytes.count * 2
    }
}
