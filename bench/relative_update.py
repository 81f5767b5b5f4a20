#!/usr/bin/python3
"""Per-tensor relative change between two checkpoints (issue 19).

  /usr/bin/python3 bench/relative_update.py A.safetensors B.safetensors [--match conv]

Prints, for every F32 tensor present in both files whose name contains
--match, ||B - A|| / ||A|| and ||A||. Batch norm after every convolution
makes a conv's output independent of its weights' scale, so this ratio
over the same steps is the learning rate the layer effectively trains at:
two initialisations of different scale, trained with Adam (steps of about
lr per weight), differ in it by about the ratio of their scales. Reads
contrast checkpoints and bench/simclr_recipe_pytorch.py's checkpoint.
"""
import argparse
import json
import math
import struct
import sys

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("a")
p.add_argument("b")
p.add_argument("--match", default="conv", help="substring of the tensor names to show ('' for all)")
args = p.parse_args()


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"{path}: too short for safetensors")
    n = struct.unpack("<Q", raw[:8])[0]
    if 8 + n > len(raw):
        sys.exit(f"{path}: header length {n} beyond the file's {len(raw)} bytes")
    header = json.loads(raw[8:8 + n])
    base, out = 8 + n, {}
    for name, h in header.items():
        if name == "__metadata__" or h.get("dtype") != "F32":
            continue
        b, e = h["data_offsets"]
        count = (e - b) // 4
        out[name] = struct.unpack("<%df" % count, raw[base + b:base + e])
    return out


a, b = read(args.a), read(args.b)
names = [k for k in a if k in b and args.match in k and len(a[k]) == len(b[k])]
if not names:
    sys.exit("no common tensor matches --match %r" % args.match)
print("%-40s %12s %14s" % ("tensor", "|A|", "|B-A|/|A|"))
for k in names:
    na = math.sqrt(sum(x * x for x in a[k]))
    nd = math.sqrt(sum((y - x) ** 2 for x, y in zip(a[k], b[k])))
    print("%-40s %12.5f %14.6f" % (k, na, nd / na if na > 0 else float("nan")))
