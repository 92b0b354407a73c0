#!/usr/bin/env python3
"""Reads a TensorBoard events file without TensorFlow or bevt: checks the TFRecord framing and both masked
CRC-32C checksums of every record, decodes the Event / Summary protobuf wire format, and prints one JSON object
per scalar: {"step": ..., "tag": ..., "value": ...}, after {"file_version": ...}. Exit 1 on any corruption."""
import json
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def main(path: str) -> int:
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (n,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != len_crc:
            print(f"{path}: bad length CRC at byte {pos}", file=sys.stderr)
            return 1
        body = data[pos + 12:pos + 12 + n]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])
        if len(body) != n or masked(body) != body_crc:
            print(f"{path}: bad data CRC at byte {pos}", file=sys.stderr)
            return 1
        pos += 16 + n
        step = 0
        for num, _, v in fields(body):
            if num == 2:
                step = v
            elif num == 3:
                print(json.dumps({"file_version": v.decode()}))
            elif num == 5:
                for snum, _, value in fields(v):
                    if snum != 1:
                        continue
                    tag, x = None, None
                    for vnum, _, vv in fields(value):
                        if vnum == 1:
                            tag = vv.decode()
                        elif vnum == 2:
                            (x,) = struct.unpack("<f", vv)
                    print(json.dumps({"step": step, "tag": tag, "value": x}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
