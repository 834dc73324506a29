import ArgumentParser
import LogStore

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show a log's layout, LSNs and containers (read-only).",
        discussion: """
            Example:
              txlog info /var/lib/app/log --json
            """)

    @Argument(help: "The log directory.") var path: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let log = try openForReading(path)
        let info = log.info()
        let report = log.recoveryReport
        if json {
            printJSON(infoJSON(info, report, oldestReadable: log.oldestReadableLSN))
            return
        }
        print("log        \(info.logID)")
        print("directory  \(escaped(info.directory))")
        print("containers \(info.containers.count) × \(formatBytes(info.containerSize)) = \(formatBytes(info.capacityBytes)), \(info.freeContainers) free")
        print("block size \(formatBytes(UInt64(info.blockSize))), max record \(formatBytes(UInt64(info.maxRecordSize))), codec \(info.codec)")
        print("space      capacity \(formatBytes(info.capacityBytes)), used \(formatBytes(info.usedBytes)), free \(formatBytes(info.freeBytes)), reserved \(formatBytes(info.reservedBytes))")
        print("epoch      \(info.epoch)")
        print("base LSN   \(info.baseLSN)")
        print("last LSN   \(info.lastLSN)")
        print("archive    \(info.archiveTail)")
        // Where `dump` starts: the records below the base that an archive tail (the log's or a stream's) keeps.
        if log.oldestReadableLSN != info.baseLSN { print("kept from  \(log.oldestReadableLSN) (records below the base kept for an archive tail)") }
        print("streams    \(info.streams.count)")
        let st = info.statistics
        print("flushes    \(st.syncs) fdatasyncs, \(st.batches) batches, \(formatBytes(st.bytesWritten)) written (this process)")
        print("clean shutdown \(report.cleanShutdown ? "yes" : "no")\(report.tornTail.map { ", torn tail dropped at \($0)" } ?? "")")
        for c in info.containers {
            // Pending-archive and pending-delete containers still hold their logical container's records.
            let logical = c.state.holdsData ? "logical \(c.logicalID)" : "-"
            print("  container \(c.physicalID)  \(c.state)  \(logical)  \(escaped(c.path))")
        }
    }
}

func infoJSON(_ info: LogInfo, _ report: RecoveryReport, oldestReadable: LSN) -> [String: Any] {
    [
        "logID": info.logID.description,
        "directory": info.directory,
        "containerSize": info.containerSize,
        "blockSize": info.blockSize,
        "maxRecordSize": info.maxRecordSize,
        "codec": info.codec.description,
        "epoch": info.epoch,
        "baseLSN": info.baseLSN.description,
        "oldestReadableLSN": oldestReadable.description,
        "lastLSN": info.lastLSN.description,
        "durableLSN": info.durableLSN.description,
        "capacityBytes": info.capacityBytes,
        "usedBytes": info.usedBytes,
        "freeBytes": info.freeBytes,
        "reservedBytes": info.reservedBytes,
        "archiveTail": info.archiveTail.description,
        "streams": info.streams.map(streamJSON),
        "policy": policyJSON(info.policy),
        "statistics": [
            "syncs": info.statistics.syncs, "batches": info.statistics.batches, "bytesWritten": info.statistics.bytesWritten,
            "blocksWritten": info.statistics.blocksWritten, "flushRequests": info.statistics.flushRequests,
            "baseWrites": info.statistics.baseWrites, "batchBlocksHistogram": info.statistics.batchBlocksHistogram,
        ] as [String: Any],
        "cleanShutdown": report.cleanShutdown,
        "tornTail": report.tornTail ?? NSNullValue(),
        "containers": info.containers.map {
            ["physicalID": $0.physicalID, "logicalID": $0.logicalID, "state": $0.state.description, "path": $0.path] as [String: Any]
        },
    ]
}

import Foundation
typealias NSNullValue = NSNull
