// The one error type of TxLog. Codes are stable: tools and scripts may match on them.

/// The error every TxLog API throws.
///
/// `code` is stable across releases and is what programs should match on; `message` is for people.
/// Location fields are filled in where they are known (corruption reports carry the LSN, container and
/// byte offset of the damage).
public struct LogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes. The raw values never change meaning.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// A caller passed a bad argument: an oversized record, an LSN outside the log, a bad option.
        case invalidArgument = "invalid-argument"
        /// A log, container, record or file that was asked for does not exist.
        case notFound = "not-found"
        /// On-disk data failed validation below the point known to be durable, or metadata is damaged.
        case corrupt = "corrupt"
        /// No container is free for the next block.
        case logFull = "log-full"
        /// A system call failed.
        case io = "io"
        /// The log entered its sticky failed state after an I/O error; reopen it to recover.
        case failed = "failed"
        /// The log was closed.
        case closed = "closed"
        /// The files were written by an unknown format version.
        case unsupportedVersion = "unsupported-version"
        /// Another process holds the log open for writing.
        case locked = "locked"
        /// The operation is not allowed in this mode (for example, appending to a read-only log).
        case readOnly = "read-only"
        /// The transaction manager or resource manager is not online (not yet recovered, or stopped).
        case notOnline = "not-online"
        /// The object is not in a state that allows the call (committing a rolled-back transaction,
        /// answering a notification that was not sent, a second superior).
        case invalidState = "invalid-state"
        /// An object with this identity already exists.
        case alreadyExists = "already-exists"
        /// The transaction was rolled back (by a participant's veto, a timeout or a rollback call).
        case aborted = "aborted"
        /// The operation was cancelled: the resource was terminated, or an open's cancellation check
        /// (`LogOpenOptions.isCancelled`) said to stop.
        case terminated = "terminated"
        /// A conflicting transaction holds or changed the same data; retry the transaction.
        case conflict = "conflict"
    }

    /// What went wrong; stable across releases, for programs to match on.
    public var code: Code
    /// A human-readable explanation; its wording may change.
    public var message: String
    /// The LSN the error concerns, when known.
    public var lsn: LSN?
    /// The physical container id the error concerns, when known.
    public var container: UInt32?
    /// The byte offset inside the container or file, when known.
    public var offset: UInt64?
    /// The file path the error concerns, when known.
    public var path: String?
    /// The `errno` of a failed system call, when the error comes from one.
    public var errno: Int32?

    /// An error with a code, a message and whichever location fields are known.
    public init(
        _ code: Code, _ message: String, lsn: LSN? = nil, container: UInt32? = nil, offset: UInt64? = nil,
        path: String? = nil, errno: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.lsn = lsn
        self.container = container
        self.offset = offset
        self.path = path
        self.errno = errno
    }

    public var description: String {
        var s = "\(code.rawValue): \(message)"
        var at: [String] = []
        if let lsn { at.append("lsn \(lsn)") }
        if let container { at.append("container \(container)") }
        if let offset { at.append("offset \(offset)") }
        if let path { at.append("path \(path)") }
        if let errno { at.append("errno \(errno)") }
        if !at.isEmpty { s += " [" + at.joined(separator: ", ") + "]" }
        return s
    }

    static func malformed(_ what: String, _ detail: String, offset: UInt64? = nil) -> LogError {
        LogError(.corrupt, "\(what): \(detail)", offset: offset)
    }
}
