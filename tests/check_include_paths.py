#!/usr/bin/env python3
"""The lean SDK's promise, read from the build's compile_commands.json: no source of a backbone, head, masker or
tokenizer plugin is compiled with an OpenCV or FFmpeg include folder, while the data library's sources are (so
that the check cannot pass on an empty or unrelated database).

usage: check_include_paths.py <compile_commands.json> <source dir> [--banned DIR]...

A folder is media when its path contains "opencv", "ffmpeg" or "libav", or when it is one of the --banned
folders (OpenCV's and FFmpeg's include folders as CMake found them). FFmpeg's headers on Debian sit in a folder
the compiler searches anyway (/usr/include/<triplet>), which CMake never spells out; what the build adds is
what this checks.
"""
import json
import os
import shlex
import sys

MEDIA_WORDS = ("opencv", "ffmpeg", "libav")
MEDIA_FREE_KINDS = ("backbones", "heads", "maskers", "tokenizers")
INCLUDE_FLAGS = ("-I", "-isystem", "-iquote", "-idirafter")


def include_dirs(entry):
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    base = entry.get("directory", "")
    dirs = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in INCLUDE_FLAGS and i + 1 < len(args):
            dirs.append(args[i + 1])
            i += 1
        else:
            flag = next((f for f in INCLUDE_FLAGS if a.startswith(f)), None)
            if flag:
                dirs.append(a[len(flag):])
        i += 1
    return [os.path.normpath(os.path.join(base, d)) for d in dirs]


def media(d, banned):
    low = d.lower()
    return any(w in low for w in MEDIA_WORDS) or d in banned


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    db_path, src = argv[1], os.path.realpath(argv[2])
    banned = set()
    rest = argv[3:]
    while rest:
        if rest[0] == "--banned" and len(rest) > 1:
            if rest[1]:
                banned.add(os.path.normpath(rest[1]))
            rest = rest[2:]
        else:
            sys.exit(f"unknown argument {rest[0]}")
    with open(db_path) as f:
        db = json.load(f)

    media_free = os.path.join(src, "plugins")
    data_lib = os.path.join(src, "core", "data", "src")
    checked, data_sources, data_media, bad = 0, 0, 0, []
    for entry in db:
        path = os.path.realpath(os.path.join(entry.get("directory", ""), entry["file"]))
        dirs = include_dirs(entry)
        rel = os.path.relpath(path, media_free)
        if not rel.startswith("..") and rel.split(os.sep)[0] in MEDIA_FREE_KINDS:
            checked += 1
            for d in dirs:
                if media(d, banned):
                    bad.append(f"{os.path.relpath(path, src)}: {d}")
        elif os.path.dirname(path) == data_lib:
            data_sources += 1
            if any(media(d, banned) for d in dirs):
                data_media += 1

    print(f"{checked} plugin sources checked; {data_media} of {data_sources} data-library sources see media folders")
    if bad:
        print("media include folders on a plugin compile line that must not have them:")
        print("\n".join("  " + b for b in bad))
        return 1
    if checked == 0:
        print(f"no source under {media_free}/{{{','.join(MEDIA_FREE_KINDS)}}} in {db_path}")
        return 1
    if data_media == 0:
        print(f"no data-library source ({data_lib}) sees an OpenCV or FFmpeg folder: the check would be vacuous")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
