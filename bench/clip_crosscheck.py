#!/usr/bin/python3
"""Cross-check of the clip encoder (ct_clip_resnet, plugin clip_resnet)
against the same network written in PyTorch.

  build/bench/clip_dump /tmp/clip.safetensors
  python3 bench/clip_crosscheck.py /tmp/clip.safetensors

The file holds contrast's initial weights under their names
("encoder.layer1.0.conv1.weight", "encoder.temporal.0.conv.weight", ...),
an input clip batch, the outputs in eval and training mode, the gradients
of sum(out**2) and the running statistics after the training pass. The
weights load with load_state_dict(strict=True) into the module below once
"encoder." is dropped: that the names and shapes match PyTorch's is the
point. Prints the largest differences and exits 1 if any exceeds its
tolerance. Needs python3-torch and python3-numpy (Debian)."""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, h in header.items():
        assert h["dtype"] == "F32", name
        b, e = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").copy().reshape(h["shape"]))
    return out, meta


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + idt)


class TemporalBlock(nn.Module):
    """relu(bn(conv3d(z)) + z) over (N, D, T, h, w)."""

    def __init__(self, d, kt, ks):
        super().__init__()
        self.conv = nn.Conv3d(d, d, (kt, ks, ks), padding=(kt // 2, ks // 2, ks // 2), bias=False)
        self.bn = nn.BatchNorm3d(d)

    def forward(self, z):
        return F.relu(self.bn(self.conv(z)) + z)


class ClipResNet(nn.Module):
    """Small-stem ResNet trunk per frame (torchvision names at the top
    level), temporal blocks, mean over time and space."""

    def __init__(self, cfg):
        super().__init__()
        w = cfg["stem_width"]
        self.conv1 = nn.Conv2d(cfg["in_channels"], w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        cin = w
        for s, (width, nblocks) in enumerate(zip(cfg["widths"], cfg["blocks"])):
            blocks = []
            for i in range(nblocks):
                blocks.append(BasicBlock(cin, width, 2 if s > 0 and i == 0 else 1))
                cin = width
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.n_stages = len(cfg["widths"])
        self.temporal = nn.ModuleList(
            [TemporalBlock(cin, cfg["temporal_kernel"], cfg["spatial_kernel"]) for _ in range(cfg["temporal_layers"])])

    def forward(self, x):
        n, t = x.shape[:2]
        h = F.relu(self.bn1(self.conv1(x.reshape(n * t, *x.shape[2:]))))
        for s in range(self.n_stages):
            h = getattr(self, "layer%d" % (s + 1))(h)
        z = h.reshape(n, t, *h.shape[1:]).permute(0, 2, 1, 3, 4)
        for blk in self.temporal:
            z = blk(z)
        return z.mean(dim=(2, 3, 4))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    tensors, meta = read_safetensors(sys.argv[1])
    cfg = json.loads(meta["config"])
    model = ClipResNet(cfg).double()
    state = {k[len("encoder."):]: v.double() for k, v in tensors.items() if k.startswith("encoder.")}
    state = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    x = tensors["input"].double()
    worst = []

    def compare(what, got, want, tol):
        err = (got.detach().double() - want.double()).abs().max().item()
        scale = max(1.0, want.abs().max().item())
        worst.append((err / scale, what, tol))

    model.eval()
    with torch.no_grad():
        compare("out.eval", model(x), tensors["out.eval"], 1e-4)
    model.train()
    y = model(x)
    compare("out.train", y, tensors["out.train"], 1e-4)
    (y ** 2).sum().backward()
    params = dict(model.named_parameters())
    for name, p in params.items():
        compare("grad." + name, p.grad, tensors["grad.encoder." + name], 1e-3)
    for name, b in model.named_buffers():
        if not name.endswith("num_batches_tracked"):
            compare("post." + name, b, tensors["post.encoder." + name], 1e-4)
    worst.sort(reverse=True)
    bad = [w for w in worst if w[0] > w[2]]
    for rel, what, tol in worst[:5]:
        print("%-48s max relative difference %.2e (tolerance %.0e)" % (what, rel, tol))
    print("%d tensors compared, %d above tolerance; torch %s" % (len(worst), len(bad), torch.__version__))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
