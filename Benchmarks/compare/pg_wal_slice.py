#!/usr/bin/env python3
"""Copies the PostgreSQL WAL bytes between two LSNs out of a pg_wal directory into one file.

Used by Benchmarks/compare/run.sh: the bytes a pgbench run wrote, exactly (no zero-filled or recycled
tail of a segment), capped at --max-bytes (the last bytes before --end are kept).

    pg_wal_slice.py --wal-dir PGDATA/pg_wal --start 0/1A2B3C4 --end 0/2B3C4D5 --max-bytes N --out FILE
"""

import argparse
import os
import re
import sys

SEGMENT_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def parse_lsn(text):
    hi, sep, lo = text.strip().partition("/")
    if not sep:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(hi, 16) << 32) | int(lo, 16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wal-dir", required=True)
    ap.add_argument("--start", required=True, help="first LSN, e.g. 0/1A2B3C4")
    ap.add_argument("--end", required=True, help="LSN after the last byte")
    ap.add_argument("--max-bytes", type=int, default=1 << 62)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    start, end = parse_lsn(args.start), parse_lsn(args.end)
    if end <= start:
        sys.exit(f"pg_wal_slice: empty range {args.start} .. {args.end}")
    start = max(start, end - args.max_bytes)

    segments = {}
    for name in os.listdir(args.wal_dir):
        m = SEGMENT_NAME.match(name)
        if m:
            segments[(int(m.group(2), 16), int(m.group(3), 16))] = (int(m.group(1), 16), name)
    if not segments:
        sys.exit(f"pg_wal_slice: no WAL segments in {args.wal_dir}")
    any_name = next(iter(segments.values()))[1]
    seg_size = os.path.getsize(os.path.join(args.wal_dir, any_name))
    per_xlogid = (1 << 32) // seg_size

    written = 0
    with open(args.out, "wb") as out:
        lsn = start
        while lsn < end:
            segno = lsn // seg_size
            key = (segno // per_xlogid, segno % per_xlogid)
            if key not in segments:
                sys.exit(f"pg_wal_slice: segment for LSN {lsn >> 32:X}/{lsn & 0xFFFFFFFF:X} is missing")
            offset = lsn % seg_size
            count = min(seg_size - offset, end - lsn)
            with open(os.path.join(args.wal_dir, segments[key][1]), "rb") as f:
                f.seek(offset)
                chunk = f.read(count)
            if len(chunk) != count:
                sys.exit(f"pg_wal_slice: short read in {segments[key][1]}")
            out.write(chunk)
            written += count
            lsn += count
    print(f"{written} bytes of WAL from {start >> 32:X}/{start & 0xFFFFFFFF:X} to {args.end} "
          f"({seg_size >> 20} MiB segments)")


if __name__ == "__main__":
    main()
