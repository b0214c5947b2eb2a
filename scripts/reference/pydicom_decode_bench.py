"""Decode throughput of pydicom (with pylibjpeg's libjpeg, OpenJPEG and RLE plug-ins, and its own
native handlers) per transfer syntax family, for `dokuei bench decode`.

usage: pydicom_decode_bench.py SECONDS < LINES      (each line: FAMILY<TAB>PATH)

For each family: every file is read and decoded whole (dcmread + pixel_array), round after
round, until SECONDS have passed (at least 3 rounds). Throughput is MB/s of decoded stored
values: rows × columns × frames × samples × bytes per allocated sample, the measure Dokuei uses.
Files pydicom cannot decode are left out and listed. Prints JSON: {family: {"files": [...],
"failed": [...], "mb_per_s": x, "rounds": n}}.
"""

import json
import sys
import time
from collections import defaultdict

import pydicom

seconds = float(sys.argv[1])
families = defaultdict(list)
for line in sys.stdin:
    family, path = line.rstrip("\n").split("\t", 1)
    families[family].append(path)


def stored_bytes(ds):
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return (int(ds.Rows) * int(ds.Columns) * frames * int(ds.get("SamplesPerPixel", 1))
            * ((int(ds.BitsAllocated) + 7) // 8))


result = {}
for family, paths in families.items():
    ok, failed, size = [], [], 0
    for p in paths:
        try:
            ds = pydicom.dcmread(p)
            ds.pixel_array
            ok.append(p)
            size += stored_bytes(ds)
        except Exception:  # noqa: BLE001 - a file pydicom cannot decode is left out
            failed.append(p)
    if not ok:
        result[family] = {"files": [], "failed": failed, "mb_per_s": 0.0, "rounds": 0}
        continue
    rounds, start = 0, time.perf_counter()
    while rounds < 3 or time.perf_counter() - start < seconds:
        for p in ok:
            pydicom.dcmread(p).pixel_array
        rounds += 1
    elapsed = time.perf_counter() - start
    result[family] = {"files": ok, "failed": failed, "mb_per_s": size * rounds / elapsed / 1e6, "rounds": rounds}
print(json.dumps(result))
