// Sizes and magic numbers of on-disk format v1. Spec: docs/format/README.md.

/// Constants of on-disk format version 1.
public enum Format {
    /// The format version written by this code.
    public static let version: UInt16 = 1
    /// Alignment of every block and of every base-file slot write.
    public static let sectorSize = 512
    /// Bytes at the start of each container reserved for its header; the first block starts here.
    public static let containerDataStart = 4096
    /// Smallest container size, and the unit container sizes are a multiple of.
    public static let containerSizeUnit: UInt64 = 512 * 1024
    /// Largest container size (block offsets in an LSN reach 4 GiB).
    public static let maxContainerSize: UInt64 = 4 * 1024 * 1024 * 1024

    /// Where the data area of a container of `size` bytes ends: blocks end at or before it. That is the
    /// container's end, except in a 4 GiB container, whose last 512 bytes stay unused: the position after
    /// the last block must have an LSN too (the end of the log, where the next block goes), and LSN
    /// block offsets stop at 4 GiB − 512.
    public static func containerDataEnd(size: UInt64) -> UInt64 { min(size, LSN.maxBlockOffset) }
    /// Fewest containers a log is created with.
    public static let minContainerCount = 2
    /// Most containers a log can have.
    public static let maxContainerCount = 1024
    /// Records per block (the 9-bit slot of an LSN).
    public static let maxRecordsPerBlock = 512
    /// Size of one base-file slot; the base file holds two.
    public static let baseSlotSize = 256 * 1024
    /// Largest configured block size (header included).
    public static let maxBlockSize = 16 * 1024 * 1024
    /// Hard upper bound on one block's uncompressed payload, whatever the configuration says.
    public static let maxRawBlockLength = 64 * 1024 * 1024

    /// Base file name inside the log directory.
    public static let baseFileName = "txlog.base"
    /// Default container file name prefix; a container is `<prefix><physical id, 6 digits>`.
    public static let defaultContainerPrefix = "container-"

    /// "TXLOGBSE" read as a little-endian UInt64.
    public static let baseMagic: UInt64 = 0x4553_4247_4F4C_5854
    /// "TXLOGCTR" read as a little-endian UInt64.
    public static let containerMagic: UInt64 = 0x5254_4347_4F4C_5854
    /// "TXB1" read as a little-endian UInt32.
    public static let blockMagic: UInt32 = 0x3142_5854
}
