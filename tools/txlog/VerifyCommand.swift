import ArgumentParser
import Foundation
import LogStore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the base file, every container header and every block (read-only).",
        discussion: """
            Opens the log read-only (it may be in use by a writer) and checks both base-file slots, every \
            container header, and every block of every container holding data, oldest first: identity, CRC32C, \
            decompression, record structure, and that each block chains to the one before. Stops at the first \
            problem; with --keep-going it resynchronises at the next valid block and reports every problem. Each \
            problem names the LSN, the physical container and the byte offset. A torn tail that recovery drops is \
            a note, not damage.

            Files in the directory that the base file does not name (an orphan container of an interrupted add \
            or remove, a leftover txlog.base.tmp, a key-value snapshot, anything else) are listed as notes: the \
            log never reads them, so they do not change the exit code.

            Exit codes: 0 clean, 1 corruption found, 2 cannot open (not a log, missing container, I/O error), \
            4 I/O error during the scan, 64 usage error (all: txlog --help).

            Examples:
              txlog verify /var/lib/app/log
              txlog verify /var/lib/app/log --keep-going --json | jq '.problems[] | .lsn'
            """)

    @Argument(help: "The log directory.") var path: String
    @Flag(help: "Report every problem, not just the first.") var keepGoing = false
    @Flag(help: "Print JSON (schema: docs/tools/txlog.md).") var json = false

    func run() throws {
        let log: LogStore
        do {
            var options = LogOpenOptions(readOnly: true, recovery: .pointInTime)
            options.readCacheBytes = 1 << 20
            log = try LogStore.open(at: path, options: options)
        } catch let e as LogError where e.code == .corrupt {
            // Damage that stops the log from opening is what verify looks for: report it as a finding.
            var report = ScanReport()
            report.problems = [problem(from: e)]
            report.complete = false
            output(report, BlockTally(), opened: false)
            throw ToolExit.corruption
        } catch {
            throw fail(error, opening: true)
        }
        let bar = ProgressBar("verify", workBytes: scanWork(log.info()))
        var report: ScanReport
        var tally = BlockTally()
        do { report = try log.walkBlocks(keepGoing: keepGoing, progress: bar.update) { tally.add($0) } } catch {
            bar.finish()
            throw fail(error)
        }
        bar.finish()
        // Files the base file does not name are never read by the log: notes, not damage.
        do { report.notes += try log.strayFiles().map(strayNote) } catch { throw fail(error) }
        output(report, tally, opened: true)
        if !report.problems.isEmpty { throw ToolExit.corruption }
    }

    /// `opened`: false when the damage in `r` stopped the log from opening, so nothing past it was checked
    /// (with or without --keep-going).
    private func output(_ r: ScanReport, _ t: BlockTally, opened: Bool) {
        if json {
            printJSON([
                "ok": r.problems.isEmpty, "complete": r.complete, "blocks": t.blocks, "records": t.records,
                "rawBytes": t.rawBytes, "bytesScanned": r.bytesScanned, "containersChecked": r.containersChecked,
                "end": r.end.description,
                "baseSlots": r.baseSlots.map {
                    ["slot": $0.slot, "state": $0.state.rawValue, "generation": $0.generation.map { $0 as Any } ?? NSNull()] as [String: Any]
                },
                "problems": r.problems.map(problemJSON), "notes": r.notes,
            ] as [String: Any])
            return
        }
        if !r.baseSlots.isEmpty {
            let slots = r.baseSlots.map { "slot \($0.slot) \($0.state.rawValue)\($0.generation.map { " (generation \($0))" } ?? "")" }
            print("base file   \(slots.joined(separator: ", "))")
        }
        if r.containersChecked > 0 { print("containers  \(r.containersChecked) headers checked") }
        if r.bytesScanned > 0 || r.problems.isEmpty {
            let first = t.first.map { " from \($0)" } ?? ""
            print("blocks      \(t.blocks) blocks, \(t.records) records, \(formatBytes(UInt64(t.rawBytes))) of raw payload\(first), end \(r.end)")
        }
        for n in r.notes { print("note        \(escaped(n))") }
        for p in r.problems { print("CORRUPT     \(escaped(p.description))") }
        if r.problems.isEmpty {
            print("ok: the log is clean")
        } else {
            // Damage that stops the open ends the check, also with --keep-going: pointing to --keep-going
            // there sent the reader round in a circle.
            let more =
                !opened ? " (it stops the log from opening: nothing after it was checked)"
                : r.complete ? "" : " (stopped at the first; --keep-going reports all)"
            print("FAILED: \(r.problems.count) problem\(r.problems.count == 1 ? "" : "s") found\(more)")
        }
    }
}

/// What `verify` says of the valid blocks, tallied as the walk hands them over (nothing kept per block,
/// so its memory does not grow with the log).
struct BlockTally {
    var blocks = 0, records = 0, rawBytes = 0
    /// The first valid block's position.
    var first: LSN?

    mutating func add(_ b: ScannedBlock) {
        if first == nil { first = b.lsn }
        blocks += 1
        records += b.recordCount
        rawBytes += b.rawLength
    }
}

/// One note line for a file the base file does not name; key-value snapshots (docs/format/kv-snapshot.md)
/// are named as such.
func strayNote(_ f: StrayFile) -> String {
    let kv = f.kind == .other && f.name.hasPrefix("kv-") && (f.name.hasSuffix(".snap") || f.name.hasSuffix(".snap.tmp"))
    return "stray file \(f.name): \(f.kind.rawValue), " + (kv ? "a key-value store's snapshot file, not the log's, ignored" : f.detail)
}
