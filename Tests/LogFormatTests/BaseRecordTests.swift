// One base-file slot: header, sections, container table and the cross-field rules of validate():
// docs/format/base-file.md.

import Testing
@testable import LogFormat

@Suite struct BaseRecordTests {
    // MARK: Helpers

    static func section(type: UInt16, flags: UInt16, body: [UInt8], length: UInt32? = nil) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 8)
        put16(&h, 0, type)
        put16(&h, 2, flags)
        put32(&h, 4, length ?? UInt32(body.count))
        return h + body
    }

    static func containerBody(_ entries: [ContainerEntry], count: UInt32? = nil) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 4)
        put32(&b, 0, count ?? UInt32(entries.count))
        for e in entries {
            var row = [UInt8](repeating: 0, count: 32)
            put32(&row, 0, e.physicalID)
            put32(&row, 4, e.logicalID)
            row[8] = e.state.rawValue
            put64(&row, 16, e.endOffset)
            b += row
        }
        return b
    }

    static var containerSection: [UInt8] {
        section(type: 1, flags: 1, body: containerBody(Sample.baseRecord.containers))
    }

    /// A slot with the sample's 128-byte header and the given sections as payload, correct length and CRC.
    static func slot(sections: [[UInt8]]) -> [UInt8] {
        let payload = sections.flatMap { $0 }
        var bytes = Array(Sample.baseRecord.encode()[0..<BaseRecord.headerSize]) + payload
        bytes += [UInt8](repeating: 0, count: roundUp(bytes.count, to: 512) - bytes.count)
        put32(&bytes, 24, UInt32(payload.count))
        resealBaseCRC(&bytes)
        return bytes
    }

    func code(_ bytes: [UInt8]) -> LogError.Code? { errorCode { try decodeBase(bytes) } }

    // MARK: Round trip and layout

    @Test func roundTrip() throws {
        let r = Sample.baseRecord
        let bytes = r.encode()
        #expect(bytes.count == 512)
        #expect(try decodeBase(bytes) == r)
        // Padding up to the slot size is allowed.
        #expect(try decodeBase(bytes + [UInt8](repeating: 0, count: Format.baseSlotSize - 512)) == r)
        var clean = r
        clean.flags = BaseRecord.cleanShutdownFlag
        clean.codec = .zlib(level: 9)
        clean.baseLSN = .null
        #expect(try decodeBase(clean.encode()) == clean)
    }

    @Test func largestTableRoundTrips() throws {
        var r = Sample.baseRecord
        r.containers = (0..<UInt32(Format.maxContainerCount)).map {
            ContainerEntry(physicalID: $0, logicalID: $0 < 2 ? 4 + $0 : 0, state: $0 < 2 ? .active : .inactive,
                           endOffset: $0 == 0 ? 1_047_552 : 0)
        }
        r.nextPhysicalID = UInt32(Format.maxContainerCount)
        let bytes = r.encode()
        #expect(bytes.count == roundUp(128 + 8 + 4 + 32 * 1024, to: 512))
        #expect(bytes.count <= Format.baseSlotSize)
        #expect(try decodeBase(bytes) == r)
    }

    @Test func layout() {
        let b = Sample.baseRecord.encode()
        #expect(hex(Array(b[0..<8])) == hex(Array("TXLOGBSE".utf8)))
        #expect(le16(b, 8) == 1 && le16(b, 10) == 128)
        #expect(le64(b, 16) == 5 && le32(b, 24) == 108 && le32(b, 28) == 0)
        #expect(le64(b, 32) == Sample.logID.high && le64(b, 40) == Sample.logID.low)
        #expect(le64(b, 48) == 1 << 20 && le32(b, 56) == 65_536 && le32(b, 60) == 1_044_392)
        #expect(b[64] == 1 && b[65] == 0 && le16(b, 66) == 0 && le32(b, 68) == 3)
        #expect(le64(b, 72) == 0x0000_0004_0000_2000)
        #expect(le64(b, 80) == 0x0000_0004_000F_FA02 && le64(b, 88) == 0x0000_0005_0000_1000)
        #expect(le64(b, 96) == 0x0000_0004_000F_FA02 && le32(b, 104) == 0x1234_ABCD && le32(b, 108) == 3)
        #expect(b[112..<128].allSatisfy { $0 == 0 })
        // Section header, count, first entry.
        #expect(le16(b, 128) == 1 && le16(b, 130) == 1 && le32(b, 132) == 100 && le32(b, 136) == 3)
        #expect(le32(b, 140) == 0 && le32(b, 144) == 4 && b[148] == 1 && le64(b, 156) == 1_047_552)
        #expect(b[149..<156].allSatisfy { $0 == 0 } && b[164..<172].allSatisfy { $0 == 0 })
        #expect(b[236...].allSatisfy { $0 == 0 })
        // CRC32C over bytes 0..<128+108 with bytes 12..<16 zero.
        var covered = Array(b[0..<236])
        put32(&covered, 12, 0)
        #expect(le32(b, 12) == CRC32C.checksum(covered))
    }

    // MARK: Damage

    /// Every flip is corrupt, including flips in the version field: the CRC is checked before the version,
    /// so a damaged slot is never mistaken for a newer format (which would fail the whole open).
    @Test func everyBitFlipInTheCoveredBytesIsRejected() {
        let bytes = Sample.baseRecord.encode()
        for bit in 0..<(236 * 8) {
            #expect(code(flipping(bytes, bit: bit)) == .corrupt, "bit \(bit) (byte \(bit / 8))")
        }
    }

    /// Bytes after the payload (up to the slot's 512-byte rounding or the full 256 KiB) are not covered.
    @Test func bytesAfterThePayloadAreNotCovered() throws {
        let bytes = Sample.baseRecord.encode()
        for byte in [236, 300, 511] {
            #expect(try decodeBase(flipping(bytes, bit: byte * 8)) == Sample.baseRecord)
        }
    }

    @Test func everyTruncationOfTheCoveredBytesIsCorrupt() throws {
        let bytes = Sample.baseRecord.encode()
        for n in 0..<236 {
            #expect(code(Array(bytes[0..<n])) == .corrupt, "\(n) bytes")
        }
        #expect(try decodeBase(Array(bytes[0..<236])) == Sample.baseRecord)
    }

    @Test func headerChecks() {
        var b = Sample.baseRecord.encode()
        put16(&b, 8, 2)
        #expect(code(b) == .corrupt, "version 2 under a stale CRC is damage")
        resealBaseCRC(&b)
        #expect(code(b) == .unsupportedVersion, "an intact version-2 slot is a newer format")
        b = Sample.baseRecord.encode()
        put16(&b, 10, 64)
        resealBaseCRC(&b)
        #expect(code(b) == .corrupt)
        b = Sample.baseRecord.encode()
        put32(&b, 24, UInt32(Format.baseSlotSize - 128 + 1))
        #expect(code(b + [UInt8](repeating: 0, count: Format.baseSlotSize)) == .corrupt)
        b = Sample.baseRecord.encode()
        put32(&b, 24, 512 - 128 + 1)
        #expect(code(b) == .corrupt)
        #expect(code([UInt8](repeating: 0, count: 512)) == .corrupt)
    }

    @Test func codecChecks() {
        var b = Sample.baseRecord.encode()
        b[64] = 3
        resealBaseCRC(&b)
        #expect(code(b) == .unsupportedVersion)
        b = Sample.baseRecord.encode()
        b[64] = 2
        b[65] = 0
        resealBaseCRC(&b)
        #expect(code(b) == .corrupt)
        // The level byte is ignored unless the codec is zlib.
        b = Sample.baseRecord.encode()
        b[65] = 9
        resealBaseCRC(&b)
        #expect(code(b) == nil)
    }

    // MARK: Sections

    @Test func sections() throws {
        let containers = Self.containerSection
        #expect(try decodeBase(Self.slot(sections: [containers])) == Sample.baseRecord)
        // Unknown optional sections, before or after, are skipped; so is a zero-filled (type 0) one.
        let optional = Self.section(type: 7, flags: 0, body: [1, 2, 3])
        #expect(try decodeBase(Self.slot(sections: [optional, containers, optional])) == Sample.baseRecord)
        #expect(try decodeBase(Self.slot(sections: [containers, [UInt8](repeating: 0, count: 8)])) == Sample.baseRecord)
        // The container section's own flags are not checked.
        let unflagged = Self.section(type: 1, flags: 0, body: Self.containerBody(Sample.baseRecord.containers))
        #expect(try decodeBase(Self.slot(sections: [unflagged])) == Sample.baseRecord)
        // An unknown required section means a newer format.
        let required = Self.section(type: 7, flags: 1, body: [])
        #expect(code(Self.slot(sections: [containers, required])) == .unsupportedVersion)
        #expect(code(Self.slot(sections: [required, containers])) == .unsupportedVersion)
        #expect(code(Self.slot(sections: [containers, Self.section(type: 0xFFFF, flags: 0xFFFF, body: [0])])) == .unsupportedVersion)
        // Structure errors.
        #expect(code(Self.slot(sections: [])) == .corrupt, "no container section")
        #expect(code(Self.slot(sections: [optional])) == .corrupt, "no container section")
        #expect(code(Self.slot(sections: [containers, containers])) == .corrupt, "two container sections")
        #expect(code(Self.slot(sections: [containers, [1, 0, 0, 0]])) == .corrupt, "truncated section header")
        #expect(code(Self.slot(sections: [containers, Self.section(type: 7, flags: 0, body: [1], length: 2)])) == .corrupt, "overrun")
        #expect(code(Self.slot(sections: [Self.section(type: 7, flags: 0, body: [], length: .max), containers])) == .corrupt, "overrun")
        #expect(code(Self.slot(sections: [Self.section(type: 1, flags: 1, body: [3, 0])])) == .corrupt, "section too short")
    }

    @Test func containerTableChecks() {
        let entries = Sample.baseRecord.containers
        func table(_ body: [UInt8], length: UInt32? = nil) -> LogError.Code? {
            code(Self.slot(sections: [Self.section(type: 1, flags: 1, body: body, length: length)]))
        }
        #expect(table(Self.containerBody(entries)) == nil)
        #expect(table(Self.containerBody(entries, count: 4)) == .corrupt, "count above the entries")
        #expect(table(Self.containerBody(entries, count: 2)) == .corrupt, "count below the entries")
        #expect(table(Self.containerBody(entries) + [0]) == .corrupt, "length not 4 + 32 * count")
        #expect(table(Self.containerBody(entries, count: 1025)) == .corrupt, "count above 1024")
        #expect(table(Self.containerBody(entries, count: .max)) == .corrupt, "huge count")
        var body = Self.containerBody(entries)
        body[4 + 8] = 4
        #expect(table(body) == .corrupt, "unknown state")
        body[4 + 8] = 0xFF
        #expect(table(body) == .corrupt, "unknown state")
        // Reserved bytes of an entry are not checked.
        body = Self.containerBody(entries)
        body[4 + 9] = 0xFF
        body[4 + 24] = 0xFF
        #expect(table(body) == nil)
    }

    // MARK: Container states and sections 2-4

    @Test func containerStatesThatHoldData() throws {
        #expect(ContainerState.allCases.map(\.rawValue) == [0, 1, 2, 3])
        #expect(ContainerState.allCases.filter(\.holdsData) == [.active, .pendingArchive, .pendingDelete])
        for state in [ContainerState.pendingArchive, .pendingDelete] {
            var r = Sample.baseRecord
            r.containers[0].state = state  // the closed logical container 4
            #expect(try decodeBase(r.encode()) == r)
            r.containers[0].endOffset = 0
            #expect(code(r.encode()) == .corrupt, "\(state): closed without an end offset")
            r = Sample.baseRecord
            r.containers[2].state = state  // a free container cannot hold data
            #expect(code(r.encode()) == .corrupt, "\(state): logical id 0")
        }
    }

    static var richRecord: BaseRecord {
        var r = Sample.baseRecord
        r.streams = [
            StreamEntry(id: 0, name: ""),
            StreamEntry(id: 1, name: "orders", base: LSN(container: 4, blockOffset: 8192, slot: 1)!, last: Sample.durableHint),
            StreamEntry(id: 3, flags: 1, name: "old"),
        ]
        r.nextStreamID = 4
        r.archiveTail = LSN(container: 4, blockOffset: 4096, slot: 0)!
        var policy = LogPolicy()
        policy.autoGrow = true
        policy.maxContainers = 8
        policy.containerPrefix = "log-"
        r.policy = policy
        r.containerNames = [2: "log-000002"]
        return r
    }

    @Test func sectionsTwoToFourRoundTrip() throws {
        let r = Self.richRecord
        let bytes = r.encode()
        #expect(try decodeBase(bytes) == r)
        #expect(le64(bytes, 112) == 0x0000_0004_0000_1000)
        // Sections 1, 2, 3, 4 in that order, all required.
        var o = 128
        var types: [UInt16] = []
        while o < 128 + Int(le32(bytes, 24)) {
            types.append(le16(bytes, o))
            #expect(le16(bytes, o + 2) == 1)
            o += 8 + Int(le32(bytes, o + 4))
        }
        #expect(types == [1, 2, 3, 4])
        #expect(o == 128 + Int(le32(bytes, 24)))
        // A default policy and no names write no sections 3 and 4.
        var plain = r
        plain.policy = .default
        plain.containerNames = [:]
        #expect(Int(le32(plain.encode(), 24)) == Int(le32(bytes, 24)) - (8 + 40) - (8 + 24))
    }

    @Test func streamSectionChecks() {
        let r = Self.richRecord
        let containers = Self.containerSection
        func streams(_ change: (inout [UInt8]) -> Void) -> LogError.Code? {
            var body = BaseRecord.encodeStreams(r.streams, nextStreamID: r.nextStreamID)
            change(&body)
            return code(Self.slot(sections: [containers, Self.section(type: 2, flags: 1, body: body)]))
        }
        #expect(streams { _ in } == nil)
        #expect(streams { put16(&$0, 0, 3) } == .corrupt, "id 3 not below next stream id 3")
        #expect(streams { put16(&$0, 8 + 40 + 2, 2) } == .corrupt, "unknown stream flag")
        #expect(streams { put16(&$0, 8 + 40, 0) } == .corrupt, "duplicated id")
        #expect(streams { $0[8 + 40 + 40] = 0xFF } == .corrupt, "name not UTF-8")
        // Names compare as Unicode text, as `createStream` compares them: "é" as one code point and as "e"
        // plus a combining accent are one name written twice, though their bytes differ.
        var equivalent = r
        equivalent.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 1, name: "caf\u{E9}"), StreamEntry(id: 2, name: "cafe\u{301}")]
        equivalent.nextStreamID = 3
        #expect(Array(equivalent.streams[1].name.utf8) != Array(equivalent.streams[2].name.utf8))
        #expect(streams { $0 = BaseRecord.encodeStreams(equivalent.streams, nextStreamID: 3) } == .corrupt, "canonically equivalent names")
        #expect(throws: LogError.self, "validate refuses them too") { try equivalent.validate() }
        #expect(streams { put16(&$0, 8 + 40 + 4, 256) } == .corrupt, "name longer than 255")
        #expect(streams { put32(&$0, 4, 4) } == .corrupt, "count above the entries")
        #expect(streams { put32(&$0, 4, 4097) } == .corrupt, "count above 4096")
        #expect(streams { $0 += [UInt8](repeating: 0, count: 8) } == .corrupt, "trailing bytes")
        #expect(streams { $0 = Array($0[0..<4]) } == .corrupt, "body shorter than 8")
        let body = BaseRecord.encodeStreams(r.streams, nextStreamID: r.nextStreamID)
        let twice = Self.section(type: 2, flags: 1, body: body)
        #expect(code(Self.slot(sections: [containers, twice, twice])) == .corrupt, "two stream sections")
    }

    @Test func policyAndNameSectionChecks() {
        let r = Self.richRecord
        let containers = Self.containerSection
        func policy(_ change: (inout [UInt8]) -> Void) -> LogError.Code? {
            var body = BaseRecord.encodePolicy(r.policy)
            change(&body)
            return code(Self.slot(sections: [containers, Self.section(type: 3, flags: 1, body: body)]))
        }
        #expect(policy { _ in } == nil)
        #expect(policy { $0[12] = 2 } == .corrupt, "auto-grow flag 2")
        #expect(policy { put32(&$0, 0, 1) } == .corrupt, "minimum below 2")
        #expect(policy { put32(&$0, 4, 1025) } == .corrupt, "maximum above 1024")
        #expect(policy { put16(&$0, 14, 9) } == .corrupt, "prefix length does not match the section")
        #expect(policy { $0[32] = UInt8(ascii: "/") } == .corrupt, "prefix character")
        func names(_ change: (inout [UInt8]) -> Void) -> LogError.Code? {
            var body = BaseRecord.encodeNames(r.containerNames)
            change(&body)
            return code(Self.slot(sections: [containers, Self.section(type: 4, flags: 1, body: body)]))
        }
        #expect(names { _ in } == nil)
        #expect(names { put32(&$0, 4, 7) } == .corrupt, "name for a container not in the table")
        #expect(names { $0[10] = UInt8(ascii: "/") } == .corrupt, "name character")
        #expect(names { put16(&$0, 8, 0) } == .corrupt, "empty name")
        #expect(names { put32(&$0, 0, 1025) } == .corrupt, "count above 1024")
        #expect(names { $0 += [UInt8](repeating: 0, count: 8) } == .corrupt, "trailing bytes")
        #expect(names { $0[$0.count - 1] = 1 } == .corrupt, "non-zero padding")
    }

    // MARK: validate()

    /// Each change makes the sample impossible; validate() and decode must both say corrupt.
    static let impossible: [(String, @Sendable (inout BaseRecord) -> Void)] = [
        ("container size 0", { $0.containerSize = 0 }),
        ("container size below 512 KiB", { $0.containerSize = 512 * 1024 - 512 }),
        ("container size not a multiple of 512 KiB", { $0.containerSize = (1 << 20) + 512 }),
        ("container size above 4 GiB", { $0.containerSize = (4 << 30) + 512 * 1024 }),
        ("block size below 1 KiB", { $0.blockSize = 512 }),
        ("block size not a multiple of 512", { $0.blockSize = 1100 }),
        ("block size above the data area", { $0.blockSize = (1 << 20) - 4096 + 512 }),
        ("max record size above what a container holds", { $0.maxRecordSize += 1 }),
        ("one container", { $0.containers = [ContainerEntry(physicalID: 1, logicalID: 5, state: .active, endOffset: 0)] }),
        ("1025 containers", { r in
            r.containers += (3..<1025).map { ContainerEntry(physicalID: $0, logicalID: 0, state: .inactive, endOffset: 0) }
            r.nextPhysicalID = 1025
        }),
        ("duplicated physical id", { $0.containers[2].physicalID = 1 }),
        ("physical id not below next", { $0.nextPhysicalID = 2 }),
        ("end offset beyond the container", { $0.containers[0].endOffset = (1 << 20) + 512 }),
        ("end offset unaligned", { $0.containers[0].endOffset = 1_047_552 - 1 }),
        ("active with logical id 0", { $0.containers[1].logicalID = 0 }),
        ("duplicated logical id", { $0.containers[0].logicalID = 5 }),
        ("inactive with a logical id", { $0.containers[2].logicalID = 9 }),
        ("inactive with an end offset", { $0.containers[2].endOffset = 4096 }),
        ("logical ids not contiguous", { r in
            r.containers[1].logicalID = 6
            r.scanStart = LSN(container: 6, blockOffset: 4096, slot: 0)!
        }),
        ("no active container", { r in
            r.containers[0] = ContainerEntry(physicalID: 0, logicalID: 0, state: .inactive, endOffset: 0)
            r.containers[1] = ContainerEntry(physicalID: 1, logicalID: 0, state: .inactive, endOffset: 0)
        }),
        ("scan start in no active container", { $0.scanStart = LSN(container: 7, blockOffset: 4096, slot: 0)! }),
        ("scan start with a slot", { $0.scanStart = LSN(container: 5, blockOffset: 4096, slot: 1)! }),
        ("scan start inside the container header", { $0.scanStart = LSN(container: 5, blockOffset: 3584, slot: 0)! }),
        ("scan start at offset 0", { $0.scanStart = LSN(container: 5, blockOffset: 0, slot: 0)! }),
        ("scan start at the container end", { $0.scanStart = LSN(container: 5, blockOffset: 1 << 20, slot: 0)! }),
        ("scan start not in the newest container", { $0.scanStart = LSN(container: 4, blockOffset: 4096, slot: 0)! }),
        ("closed container without an end offset", { $0.containers[0].endOffset = 0 }),
        ("closed container ending inside its header", { $0.containers[0].endOffset = 3584 }),
        ("base LSN below the oldest active container", { $0.baseLSN = LSN(container: 3, blockOffset: 4096, slot: 0)! }),
        ("stream name duplicated", { r in
            r.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 1, name: "a"), StreamEntry(id: 2, name: "a")]
            r.nextStreamID = 3
        }),
        ("stream id duplicated", { r in
            r.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 1, name: "a"), StreamEntry(id: 1, name: "b")]
            r.nextStreamID = 3
        }),
        ("stream id not below the next", { r in
            r.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 3, name: "a")]
            r.nextStreamID = 3
        }),
        ("stream with an unknown flag", { r in
            r.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 1, flags: 2, name: "a")]
            r.nextStreamID = 2
        }),
        ("stream name longer than 255 bytes", { r in
            r.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 1, name: String(repeating: "n", count: 256))]
            r.nextStreamID = 2
        }),
        ("more than 4096 streams (they would fit the slot)", { r in
            r.streams = (0...4096).map { StreamEntry(id: UInt16($0), name: "") }
            r.nextStreamID = 4097
        }),
        ("a container name not allowed (the id is in the table)", { $0.containerNames = [2: "txlog.base.x"] }),
        ("sections larger than a slot (900 streams with 255-byte names)", { r in
            r.streams = (0..<900).map { StreamEntry(id: UInt16($0), name: String(repeating: "n", count: 250) + String(100_000 + $0)) }
            r.nextStreamID = 900
        }),
    ]

    @Test("payloadLength is the payload length encode() writes; validate() accepts the fullest slot and refuses one 8 bytes longer")
    func payloadLengthAndTheSlotSizeRule() throws {
        #expect(Self.richRecord.payloadLength == Int(le32(Self.richRecord.encode(), 24)))
        #expect(Sample.baseRecord.payloadLength == 108)
        var r = Sample.baseRecord
        r.streams = [StreamEntry(id: 0, name: "")]
        r.nextStreamID = 1
        // Fill the payload with 255-byte-name entries and one shorter one. The container section is
        // 4 bytes past a multiple of 8 and every other section a multiple of 8, so the fullest payload
        // is maxPayloadLength - 4 (the slot image, rounded up to 512, is then the whole slot).
        let room = BaseRecord.maxPayloadLength - r.payloadLength
        let full = room / (40 + 256)
        r.streams += (1...full).map { StreamEntry(id: UInt16($0), name: String(repeating: "s", count: 250) + String(10_000 + $0)) }
        let left = BaseRecord.maxPayloadLength - r.payloadLength
        #expect(left >= 44 && left % 8 == 4)
        r.streams.append(StreamEntry(id: UInt16(full + 1), name: String(repeating: "x", count: left - 4 - 40)))
        r.nextStreamID = UInt16(full + 2)
        #expect(r.payloadLength == BaseRecord.maxPayloadLength - 4)
        try r.validate()
        let bytes = r.encode()
        #expect(bytes.count == Format.baseSlotSize)
        #expect(try decodeBase(bytes) == r)
        r.streams[r.streams.count - 1].name += "x"  // 8 bytes more once padded
        #expect(r.payloadLength == BaseRecord.maxPayloadLength + 4)
        #expect(errorCode { try r.validate() } == .corrupt)
        #expect(code(r.encode()) == .corrupt)
    }

    @Test func validateRejectsEachImpossibleValue() throws {
        try Sample.baseRecord.validate()
        for (name, change) in Self.impossible {
            var r = Sample.baseRecord
            change(&r)
            #expect(errorCode { try r.validate() } == .corrupt, "validate: \(name)")
            #expect(code(r.encode()) == .corrupt, "decode: \(name)")
        }
    }

    /// A deleted stream's entry may share its name with a live stream (decode accepts it; so must validate).
    @Test func validateAcceptsADeletedStreamsName() throws {
        var r = Sample.baseRecord
        r.streams = [StreamEntry(id: 0, name: ""), StreamEntry(id: 1, flags: StreamEntry.deletedFlag, name: "a"), StreamEntry(id: 2, name: "a")]
        r.nextStreamID = 3
        try r.validate()
        #expect(try decodeBase(r.encode()) == r)
    }

    /// Fields validate() does not relate to anything: documented in base-file.md as "not checked".
    @Test func validateAcceptsUncheckedFields() throws {
        var r = Sample.baseRecord
        r.durableWatermark = .invalid
        r.scanStartPreviousLSN = .invalid
        r.epoch = .max
        r.generation = 0
        r.flags = 0xFFFF_FFFF
        r.containers[1].endOffset = 8192  // the newest container's end offset
        r.blockSize = 16 << 20  // the largest block size a log may have (Format.maxBlockSize)
        r.containerSize = 128 << 20
        try r.validate()
        #expect(try decodeBase(r.encode()) == r)
        r.blockSize = (16 << 20) + 512
        #expect(errorCode { try r.validate() } == .corrupt, "a block size above Format.maxBlockSize is refused on read too")
    }

    @Test func largestRecordRule() {
        #expect(LogLimits.largestRecord(containerSize: 512 * 1024) == 512 * 1024 - 4096 - 64 - 24)
        #expect(LogLimits.largestRecord(containerSize: 1 << 20) == 1_044_392)
        #expect(LogLimits.largestRecord(containerSize: 4 << 30) == (64 << 20) - 24)
        // The largest record's block exactly fills a container's data area.
        let size: UInt64 = 1 << 20
        let record = Int(LogLimits.largestRecord(containerSize: size))
        let disk = roundUp(BlockHeader.size + RecordHeader.footprint(dataLength: record), to: 512)
        #expect(UInt64(disk) == size - 4096)
    }
}
