import ArgumentParser
import Foundation
import LogStore

struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map", abstract: "Draw the log: containers as rows of cells, by state and stream (read-only).",
        discussion: """
            One row per container, in log order (oldest logical container first), then the free ones. Each cell \
            is a slice of the container; its glyph (and colour, on a terminal) is the stream whose records fill \
            most of it. Markers under a row: B base, A archive tail, R a stream's latest restart area, E the end \
            of the log. --svg FILE also writes the picture as a standalone SVG.

            Exit codes: 0 success, 1 corruption found (damaged cells are drawn as X), 2 cannot open, 4 I/O error \
            (also writing --svg), 64 usage error (all: txlog --help).

            Examples:
              txlog map /var/lib/app/log
              txlog map /var/lib/app/log --width 100 --svg log.svg
            """)

    @Argument(help: "The log directory.") var path: String
    @Option(help: "Cells per container (8...512).") var width = 64
    @Option(help: "Also write an SVG picture to this file.") var svg: String?

    func validate() throws {
        guard (8...512).contains(width) else { throw ValidationError("--width must be 8...512") }
    }

    func run() throws {
        // A read command must not write into the log: `--svg LOG/txlog.base` replaced the base file with the
        // picture (the log no longer opened), and a container's name replaced the container.
        if let svg, Self.resolved(URL(fileURLWithPath: svg).deletingLastPathComponent()) == Self.resolved(URL(fileURLWithPath: path)) {
            throw fail(LogError(.invalidArgument, "--svg \(svg) is in the log's directory: write the picture somewhere else", path: svg))
        }
        let log = try openForReading(path, mode: .pointInTime)
        let info = log.info()
        let bar = ProgressBar("map", workBytes: scanWork(info))
        let streams = log.streams()
        var cells = LogMap.Cells(info: info, streams: streams, width: width)
        let report: ScanReport
        do { report = try log.walkBlocks(keepGoing: true, progress: bar.update) { cells.add($0) } } catch {
            bar.finish()
            throw fail(error)
        }
        bar.finish()
        let picture = LogMap(info: info, streams: streams, cells: cells, report: report)
        print(picture.text(colour: useColour), terminator: "")
        if let svg {
            do { try writeWhole(picture.svg(), to: svg) } catch { throw fail(error) }
        }
        if !report.problems.isEmpty {
            FileHandle.standardError.write(Data("txlog: corrupt: \(damageSummary(report.problems, blocks: "drawn as X")); run txlog verify\n".utf8))
            throw ToolExit.corruption
        }
    }

    /// `url`'s path with symbolic links, `.` and `..` resolved, so `a/../log` and `log` compare equal.
    private static func resolved(_ url: URL) -> String {
        var p = url.standardizedFileURL.resolvingSymlinksInPath().path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        return p
    }
}

/// The picture, independent of how it is rendered.
struct LogMap {
    enum Cell: Equatable {
        case empty
        case header
        case stream(Int)  // index into `streamOrder`
        case damaged
    }

    struct Row {
        var physical: UInt32
        var logical: UInt32
        var state: ContainerState
        var cells: [Cell]
        var markers: [Int: String]  // cell -> letters
        var usedBytes: Int
    }

    let info: LogInfo
    var rows: [Row] = []
    var streamOrder: [StreamInfo] = []
    let width: Int
    let end: LSN
    /// The lowest archive tail set, the log's or a stream's (null when none is), for the legend: it named
    /// the log's alone, `null` while a stream's tail kept a container pending archive.
    var lowestArchiveTail: LSN { ([info.archiveTail] + streamOrder.map(\.archiveTail)).filter(\.isValid).min() ?? .null }

    static let glyphs: [Character] = ["█", "▓", "▒", "#", "%", "@", "&", "*", "+", "="]
    static let ansi = ["34", "32", "35", "36", "33", "94", "92", "95", "96", "93"]
    static let svgColours = ["#3465a4", "#4e9a06", "#75507b", "#06989a", "#c4a000", "#729fcf", "#8ae234", "#ad7fa8", "#34e2e2", "#fce94f"]

    /// What each cell of each container holds, tallied block by block as the walk hands them over: a
    /// weight per stream per cell, so its size is the container count × the width, whatever the log's size.
    struct Cells {
        let width: Int
        let cellBytes: Double
        /// A stream's id to its index in `streamOrder`.
        let index: [UInt16: Int]
        /// The logical container each physical one holds, from the table the picture draws.
        let logical: [UInt32: UInt32]
        var weight: [UInt32: [[Int: Double]]] = [:]
        var used: [UInt32: Int] = [:]

        init(info: LogInfo, streams: [StreamInfo], width: Int) {
            self.width = width
            cellBytes = Double(info.containerSize) / Double(width)
            index = Dictionary(streams.sorted { $0.id < $1.id }.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
            logical = Dictionary(info.containers.map { ($0.physicalID, $0.logicalID) }, uniquingKeysWith: { a, _ in a })
        }

        /// Adds a valid block to its container's cells (a block of another logical container than the
        /// table's, left by an earlier cycle, is not drawn).
        mutating func add(_ b: ScannedBlock) {
            guard logical[b.physicalID] == b.lsn.container else { return }
            used[b.physicalID, default: 0] += b.diskLength
            var w = weight.removeValue(forKey: b.physicalID) ?? Array(repeating: [:], count: width)
            let total = b.streams.values.reduce(0) { $0 + max(1, $1.dataBytes) }
            let start = Double(b.offset), stop = Double(b.offset) + Double(b.diskLength)
            var i = Int(start / cellBytes)
            while i < width, Double(i) * cellBytes < stop {
                let overlap = min(stop, Double(i + 1) * cellBytes) - max(start, Double(i) * cellBytes)
                for (s, u) in b.streams { w[i][index[s] ?? 0, default: 0] += overlap * Double(max(1, u.dataBytes)) / Double(total) }
                i += 1
            }
            weight[b.physicalID] = w
        }
    }

    init(info: LogInfo, streams: [StreamInfo], cells tally: Cells, report: ScanReport) {
        self.info = info
        self.width = tally.width
        self.end = report.end
        streamOrder = streams.sorted { $0.id < $1.id }
        let cellBytes = tally.cellBytes
        let ordered = info.containers.filter { $0.state != .inactive }.sorted { $0.logicalID < $1.logicalID }
            + info.containers.filter { $0.state == .inactive }
        for c in ordered {
            let weight = tally.weight[c.physicalID] ?? Array(repeating: [Int: Double](), count: width)
            let used = tally.used[c.physicalID] ?? 0
            var cells: [Cell] = weight.map { w in w.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }.map { .stream($0.key) } ?? .empty }
            if cells[0] == .empty { cells[0] = .header }
            for p in report.problems where p.container == c.physicalID {
                if let o = p.offset { cells[min(width - 1, Int(Double(o) / cellBytes))] = .damaged }
            }
            var row = Row(physical: c.physicalID, logical: c.logicalID, state: c.state, cells: cells, markers: [:], usedBytes: used)
            func mark(_ lsn: LSN, _ letter: String) {
                guard lsn.isValid, c.state != .inactive, lsn.container == c.logicalID else { return }
                let i = min(width - 1, Int(Double(lsn.blockOffset) / cellBytes))
                if !(row.markers[i] ?? "").contains(letter) { row.markers[i, default: ""] += letter }
            }
            mark(info.baseLSN, "B")
            // The log's archive tail and every stream's: a pending-archive container is kept for one of them.
            mark(info.archiveTail, "A")
            for s in streams where s.archiveTail.isValid { mark(s.archiveTail, "A") }
            for s in streams where s.restartLSN.isValid { mark(s.restartLSN, "R") }
            mark(report.end, "E")
            rows.append(row)
        }
    }

    private func label(_ r: Row) -> String {
        let logical = r.state == .inactive ? "-" : "\(r.logical)"
        return pad("\(r.physical)", 5, right: true) + " " + pad(logical, 7, right: true) + "  " + pad(r.state == .inactive ? "free" : r.state.description, 15)
    }

    func text(colour: Bool) -> String {
        func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        let cell = formatBytes(info.containerSize / UInt64(width))
        var out = "\(escaped(info.directory)): \(info.containers.count) containers × \(formatBytes(info.containerSize)), one cell ≈ \(cell)\n"
        out += " phys logical  state\n"
        let indent = String(repeating: " ", count: 30)
        for r in rows {
            let stateCode = [ContainerState.active: "1", .pendingArchive: "33", .pendingDelete: "31", .inactive: "2"][r.state] ?? "0"
            var line = ""
            for c in r.cells {
                switch c {
                case .empty: line += paint("·", "2")
                case .header: line += paint("▏", "2")
                case .damaged: line += paint("X", "1;31")
                case .stream(let k): line += paint(String(LogMap.glyphs[k % LogMap.glyphs.count]), LogMap.ansi[k % LogMap.ansi.count])
                }
            }
            let used = r.state == .inactive ? "" : "  " + formatBytes(UInt64(r.usedBytes))
            out += paint(label(r), stateCode) + line + used + "\n"
            if !r.markers.isEmpty {
                var marks = Array(repeating: " ", count: width)
                var extra: [String] = []
                for (i, m) in r.markers.sorted(by: { $0.key < $1.key }) {
                    marks[i] = String(m.last!)
                    if m.count > 1 { extra.append("\(m) at cell \(i)") }
                }
                out += indent + paint(marks.joined(), "1") + (extra.isEmpty ? "" : "  (" + extra.joined(separator: "; ") + ")")
                out = String(out.reversed().drop { $0 == " " }.reversed()) + "\n"
            }
        }
        var legend = "streams:"
        for (k, s) in streamOrder.enumerated() {
            legend += " " + paint(String(LogMap.glyphs[k % LogMap.glyphs.count]), LogMap.ansi[k % LogMap.ansi.count]) + " \(s.id) \(s.name.isEmpty ? "(default)" : escaped(s.name))"
        }
        out += legend + "   · empty  ▏ header  X damaged\n"
        out += "markers: B base \(info.baseLSN)  A archive tail \(lowestArchiveTail)  R restart area  E end \(end)\n"
        return out
    }

    func svg() -> String {
        let cw = 10, ch = 18, left = 190, top = 40, rowGap = 16
        let rowHeight = ch + rowGap
        let w = left + width * cw + 120
        let h = top + rows.count * rowHeight + 40 + 18 * ((streamOrder.count + 3) / 4)
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var s = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(w)" height="\(h)" viewBox="0 0 \(w) \(h)" font-family="monospace" font-size="12">
            <title>txlog map of \(esc(escaped(info.directory)))</title>
            <rect width="100%" height="100%" fill="white"/>
            <text x="8" y="20" font-size="14">\(esc(escaped(info.directory))): \(info.containers.count) containers × \(formatBytes(info.containerSize)), end \(end)</text>

            """
        let stateStroke: [ContainerState: String] = [.active: "#2e3436", .pendingArchive: "#c4a000", .pendingDelete: "#cc0000", .inactive: "#babdb6"]
        for (ri, r) in rows.enumerated() {
            let y = top + ri * rowHeight
            let stateName = r.state == .inactive ? "free" : r.state.description
            let logical = r.state == .inactive ? "" : " L\(r.logical)"
            s += "<text x=\"8\" y=\"\(y + 13)\">container \(r.physical)\(logical) \(stateName)</text>\n"
            for (i, c) in r.cells.enumerated() {
                let fill: String
                switch c {
                case .empty: fill = "#f3f3f3"
                case .header: fill = "#d3d7cf"
                case .damaged: fill = "#ef2929"
                case .stream(let k): fill = LogMap.svgColours[k % LogMap.svgColours.count]
                }
                s += "<rect x=\"\(left + i * cw)\" y=\"\(y)\" width=\"\(cw)\" height=\"\(ch)\" fill=\"\(fill)\"/>\n"
            }
            let dash = r.state == .inactive ? " stroke-dasharray=\"4 3\"" : ""
            s += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(width * cw)\" height=\"\(ch)\" fill=\"none\" stroke=\"\(stateStroke[r.state] ?? "black")\" stroke-width=\"2\"\(dash)/>\n"
            for (i, m) in r.markers.sorted(by: { $0.key < $1.key }) {
                let x = left + i * cw + cw / 2
                s += "<path d=\"M\(x) \(y + ch) l-4 7 h8 z\" fill=\"black\"/><text x=\"\(x + 6)\" y=\"\(y + ch + 12)\" font-size=\"10\">\(m)</text>\n"
            }
        }
        var y = top + rows.count * rowHeight + 14
        s += "<text x=\"8\" y=\"\(y)\">markers: B base \(info.baseLSN), A archive tail \(lowestArchiveTail), R restart area, E end \(end); red X damaged</text>\n"
        for (k, st) in streamOrder.enumerated() {
            if k % 4 == 0 { y += 18 }
            let x = 8 + (k % 4) * 200
            s += "<rect x=\"\(x)\" y=\"\(y - 10)\" width=\"10\" height=\"10\" fill=\"\(LogMap.svgColours[k % LogMap.svgColours.count])\"/>"
            s += "<text x=\"\(x + 14)\" y=\"\(y)\">stream \(st.id) \(esc(st.name.isEmpty ? "(default)" : escaped(st.name)))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
