// The types of OnlineResource's interface: its configuration, what online() returns, the statuses it reports.

import LogStore

extension OnlineResource {
    /// What to bring online.
    public struct Configuration: Sendable {
        /// The log's directory.
        public var logDirectory: String
        /// Create the log with these options when the directory holds none (nil: it must exist).
        public var createOptions: LogCreateOptions?
        /// How to open the log (``OnlineResource`` adds its own cancellation to their `isCancelled`).
        public var openOptions = LogOpenOptions()
        /// The TM's stream (default `ktm`).
        public var tmStream = TransactionManager.defaultStreamName
        /// The TM's options.
        public var tmOptions = TransactionManagerOptions()
        /// The RMs to open (or create) and recover, in this order.
        public var resourceManagers: [ResourceManagerSpec] = []
        /// How long ``online()`` may take before it returns ``OnlineResult/pending``. Any length: one
        /// too long to count in nanoseconds waits as long as going online takes.
        public var onlineBudget: Duration = .milliseconds(300)
        /// How long ``OnlineResource/terminate()`` waits for a resource manager's handler (or the status
        /// handler) that the worker going online is inside before it stops without that worker: a handler
        /// that never returns must not hold terminate for ever. The worker, left behind, touches nothing
        /// of the resource any more; the handler's late calls find its TM stopped.
        public var terminateGrace: Duration = .milliseconds(300)
        /// How long ``OnlineResource/terminate()`` waits for the worker's own step (opening the log, the
        /// TM, an RM; recovering the TM) before it stops without that worker too. Those steps check for
        /// cancellation at least for every block they read, so one still running after this is stuck in
        /// a system call (a hung disk's `fsync` or read): terminate then returns at once, leaving what
        /// the worker opened to the worker, which closes it when the call returns. Until then the log
        /// stays open (its lock held): an ``OnlineResource/online()`` meanwhile fails with `locked`.
        public var stuckStepGrace: Duration = .seconds(10)
        /// The file I/O the log uses (a test seam; default the system's).
        public var io: any FileIO = PosixFileIO()

        /// A configuration for the log in `logDirectory`; the others keep their defaults.
        public init(logDirectory: String, createOptions: LogCreateOptions? = nil, resourceManagers: [ResourceManagerSpec] = []) {
            self.logDirectory = logDirectory
            self.createOptions = createOptions
            self.resourceManagers = resourceManagers
        }
    }

    /// A resource manager to open (or create) and recover as part of going online.
    public struct ResourceManagerSpec: Sendable {
        /// The RM's identity.
        public var id: GUID
        /// Its description (logged when a durable RM is first registered).
        public var description: String
        /// True for a volatile RM (logs nothing, never recovered).
        public var volatile: Bool
        /// Gets the RM's notifications.
        public var handler: @Sendable (TransactionNotification) -> Void
        /// An RM to bring online with the given identity and handler.
        public init(id: GUID, description: String = "", volatile: Bool = false, handler: @escaping @Sendable (TransactionNotification) -> Void) {
            self.id = id
            self.description = description
            self.volatile = volatile
            self.handler = handler
        }
    }

    /// What ``online()`` returned.
    public enum OnlineResult: String, Sendable {
        /// The log, the TM and every RM are up.
        case online
        /// Not up within the budget: a worker goes on, reporting through the status handler.
        case pending
    }

    /// The resource's state, as reported to the status handler.
    public enum Status: Sendable, Equatable {
        /// Not online: before `online()`, after `offline()`.
        case offline
        /// Going online: `step` names what runs; `checkpoint` increases with every report.
        case onlinePending(step: String, checkpoint: Int)
        /// The log, the TM and every RM are up.
        case online
        /// Going online failed, or the log hit an I/O failure while online: the error says why.
        case failed(LogError)
        /// `terminate()` stopped it.
        case terminated
    }
}
