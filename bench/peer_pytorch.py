#!/usr/bin/python3
"""The PyTorch peer of bench/step: the same SimCLR training step.

Reference model (configs/bench_step.cfg): ResNet with a small stem
(3x3 conv 1->32, stride 1, no max-pool), BasicBlocks [1,1,1] of widths
[32,64,128] (strides 1,2,2), global average pool, projection head
Linear 128->128, ReLU, Linear 128->64, NT-Xent (T=0.5) over 2 x B views of
28x28 Fashion-MNIST images, SGD momentum step.

Run with Debian's torch (/usr/bin/python3):
  GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \
  /usr/bin/python3 bench/peer_pytorch.py --threads 2 --batch 256 --steps 12
Prints one JSON line with the same fields as build/bench/step.

--frames T [--size S]: the CVRL clip step of build/bench/step --frames T:
ClipResNet of bench/clip_crosscheck.py (the same trunk on every frame, one
temporal block with a (3, 1, 1) kernel), 2 x B clips of T S x S frames.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--steps", type=int, default=12)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--channels-last", action="store_true")
p.add_argument("--frames", type=int, default=1)
p.add_argument("--size", type=int, default=32)
p.add_argument("--images", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
args = p.parse_args()

# Thread counts must be set before torch is imported (it starts with 1 here).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + idt)


class Encoder(nn.Module):
    def __init__(self, cin=1, stem=32, widths=(32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        layers, c = [], stem
        for i, w in enumerate(widths):
            layers.append(nn.Sequential(BasicBlock(c, w, 1 if i == 0 else 2)))
            c = w
        self.layer1, self.layer2, self.layer3 = layers
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def nt_xent(z, t):
    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    s = z @ z.t() / t
    s.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(s, target)


def load_images(path, count):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[4:8], "big")
        imgs = torch.frombuffer(bytearray(data[16:16 + 784 * min(n, count)]), dtype=torch.uint8)
        return imgs.view(-1, 1, 28, 28).float() / 255.0, True
    except OSError:
        return torch.rand(count, 1, 28, 28), False


def make_clips(images, t, size):
    """(n, t, 1, size, size): frame k holds the image at offset (k, k) mod
    the free border (bench/step.c's make_clips)."""
    n, room = images.shape[0], size - 28 + 1
    clips = torch.zeros(n, t, 1, size, size)
    for k in range(t):
        o = k % room
        clips[:, k, :, o:o + 28, o:o + 28] = images
    return clips


if args.frames > 1:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from clip_crosscheck import ClipResNet  # noqa: E402
    enc = ClipResNet({"in_channels": 1, "stem_width": 32, "widths": [32, 64, 128], "blocks": [1, 1, 1],
                      "temporal_layers": 1, "temporal_kernel": 3, "spatial_kernel": 1})
else:
    enc = Encoder()
head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
model = nn.Sequential(enc, head)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
images, real = load_images(args.images, 2 * args.batch)
if args.frames > 1:
    images = make_clips(images, args.frames, args.size)
if args.channels_last and args.frames == 1:
    model = model.to(memory_format=torch.channels_last)
elif args.channels_last:  # clips: the trunk's 2-D convolutions only (Conv3d weights are 5-D)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.to(memory_format=torch.channels_last)

times, cpu = [], []
for step in range(args.warmup + args.steps):
    # Two "views": the batch and the next images (a cheap, fixed augmentation
    # so that only the training step is timed, as in bench/step).
    x = images[: 2 * args.batch].clone()
    if args.channels_last and args.frames == 1:
        x = x.contiguous(memory_format=torch.channels_last)
    t0, c0 = time.perf_counter(), time.process_time()
    opt.zero_grad(set_to_none=True)
    loss = nt_xent(model(x), 0.5)
    loss.backward()
    opt.step()
    t1, c1 = time.perf_counter(), time.process_time()
    if step >= args.warmup:
        times.append(t1 - t0)
        cpu.append(c1 - c0)

times.sort()
cpu.sort()
med = times[len(times) // 2]
views = 2 * args.batch
macs_per_view = 37.16e6  # forward multiply-adds of the encoder (see bench/README.md)
gflop = 3 * 2 * macs_per_view * views / 1e9 if args.frames == 1 else 0
print(json.dumps({
    "engine": "pytorch " + torch.__version__ + (" channels_last" if args.channels_last else ""),
    "views_per_s": round(views / med, 1),
    "gflops": round(gflop / med, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "threads": args.threads,
    "batch": args.batch,
    "real_data": real,
    "loss": round(float(loss), 4),
    "cpu_ms_per_step": round(cpu[len(cpu) // 2] * 1e3),
    "frames": args.frames,
}))
