// Finding the transaction managers of a log: `list` (and `txlog tm list`), and `open(log:id:)`.

import LogStore

/// A TM found in a log by ``TransactionManager/list(log:)``.
public struct TransactionManagerInfo: Sendable, Equatable {
    /// The TM's identity.
    public var id: GUID
    /// The name of the TM's stream.
    public var stream: String
    /// The LSN of the restart record holding the TM's last checkpoint.
    public var checkpointLSN: LSN
    /// The last LSN of the TM's stream.
    public var lastLSN: LSN
    /// The base LSN of the TM's stream.
    public var baseLSN: LSN
    /// The resource managers the last checkpoint names.
    public var resourceManagers: Int
    /// The transactions the last checkpoint carries.
    public var transactionsAtCheckpoint: Int
}

/// One stream that ``TransactionManager/list(log:)`` reports: a TM, or a stream that may be a TM's
/// whose checkpoint cannot be read.
public struct TransactionManagerListEntry: Sendable, Equatable {
    /// The stream's name.
    public var stream: String
    /// The TM, or why its checkpoint cannot be read: `corrupt` (a damaged restart record, checkpoint
    /// or checkpoint part), `unsupported-version`, `io`, ...
    public var result: Result<TransactionManagerInfo, LogError>

    /// The TM, or nil when its checkpoint cannot be read.
    public var info: TransactionManagerInfo? { try? result.get() }

    /// Why the checkpoint cannot be read, or nil for a TM that was read.
    public var error: LogError? {
        if case .failure(let e) = result { return e }
        return nil
    }
}

extension TransactionManager {
    /// The TMs in a log: every stream whose restart area is a TM checkpoint, in stream order, and every
    /// stream whose TM checkpoint cannot be read, with the typed error (damage is reported, not left
    /// out). One bad stream does not hide the others.
    ///
    /// A stream whose restart area is another program's (a key-value store's, say) is not listed. Nor is
    /// one whose restart record cannot be read when the stream's first record can be and is not a TM
    /// record (every record of a TM's stream is one): such a stream is not a TM's. When that cannot be
    /// told either, the stream is listed with the error.
    public static func list(log: LogStore) -> [TransactionManagerListEntry] {
        checkpoints(log: log).map { s, checkpoint in
            TransactionManagerListEntry(
                stream: s.name,
                result: checkpoint.map { cp in
                    TransactionManagerInfo(
                        id: cp.tm, stream: s.name, checkpointLSN: s.restartLSN, lastLSN: s.lastLSN, baseLSN: s.baseLSN,
                        resourceManagers: cp.rms.count, transactionsAtCheckpoint: cp.transactions.count)
                })
        }
    }

    /// Every stream whose restart area is a TM checkpoint, with that checkpoint or the error reading it
    /// (see ``list(log:)`` for the streams whose restart record cannot be read).
    static func checkpoints(log: LogStore) -> [(StreamInfo, Result<TMCheckpoint, LogError>)] {
        var out: [(StreamInfo, Result<TMCheckpoint, LogError>)] = []
        for s in log.streams() where s.restartLSN != .null {
            let record: LogRecord
            do { record = try log.read(s.restartLSN) } catch let e as LogError where e.code == .notFound {
                continue  // recycled under a reader
            } catch {
                // Whose restart area it is cannot be read from it: another program's stream (a damaged
                // key-value store's) made the whole list fail.
                if mayBeTMStream(log, s) { out.append((s, .failure(logError(error)))) }
                continue
            }
            // Another kind of restart area (a key-value store's, say) is not a TM's.
            guard record.type == .restart, TMRecord.hasMagic(record.data) else { continue }
            out.append((s, Result { try loadCheckpoint(record, read: log.read) }.mapError(logError)))
        }
        return out
    }

    /// Whether `s`, whose restart record cannot be read, may be a TM's stream: false only when its first
    /// record can be read and is not a TM record.
    private static func mayBeTMStream(_ log: LogStore, _ s: StreamInfo) -> Bool {
        do {
            let stream = s.id == 0 ? log.defaultStream : try log.openStream(s.name)
            var cursor = try stream.records()
            guard let first = try cursor.next() else { return true }
            return TMRecord.hasMagic(first.data)
        } catch {
            return true
        }
    }

    private static func logError(_ error: any Error) -> LogError { (error as? LogError) ?? LogError(.io, "\(error)") }
}
