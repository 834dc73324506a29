// Where `txlog dump` starts without `--from`: the oldest record the log holds, which is below the base when
// an archive tail keeps records there until they are archived (`LogStore.oldestReadableLSN`).

import LogStore

extension DumpCommand {
    /// Marks, in the text form, a record below the log's base that the log still holds for an archive tail.
    static let belowBaseNote = "below the base: kept for archiving"

    /// A whole-log cursor from the oldest record the log keeps readable: the lowest archive tail when one is
    /// below the base (its records are still on disk until archived, as `pg_waldump` shows every record still
    /// there), else the base. A tail that names no record (a base file another writer made) starts at the base.
    static func oldestReadable(_ log: LogStore) throws -> LogCursor {
        let (floor, base) = (log.oldestReadableLSN, log.baseLSN)
        guard floor != .null, base != .null, floor < base else { return try log.records() }
        do { return try log.records(from: floor) } catch let e as LogError where e.code == .notFound || e.code == .invalidArgument {
            return try log.records()
        }
    }

    /// A stream's cursor from the oldest of its records the log keeps for it: its base, or, when lower, its
    /// archive tail or the log's (the records from there on are kept until archived, also this stream's).
    static func oldestReadable(_ log: LogStore, _ stream: LogStream) throws -> LogCursor {
        let info = log.info()
        guard let s = info.streams.first(where: { $0.id == stream.id }), s.baseLSN.isValid,
            let tail = [s.archiveTail, info.archiveTail].filter({ $0.isValid && $0 < s.baseLSN }).min(), tail >= log.oldestReadableLSN
        else { return try stream.records() }
        do { return try stream.records(from: tail) } catch let e as LogError where e.code == .notFound || e.code == .invalidArgument {
            return try stream.records()
        }
    }
}
