#!/usr/bin/python3
"""The PyTorch side of issue 19: configs/simclr_fmnist.cfg's recipe in PyTorch.

Trains the reference encoder (small-stem ResNet, BasicBlocks [1,1,1] of
widths [32,64,128], 128-d features) with the projection head 128-128-64 and
NT-Xent (T 0.5) on the 60,000 Fashion-MNIST training images, batch 256,
4 epochs, lr 1e-3 cosine without warm-up, then writes what a shared probe
(bench/probe_features.py) scores, the same files `contrast embed` writes:

  OUT/train.npy, OUT/train.labels.npy   encoder features (float32 N x 128)
  OUT/test.npy,  OUT/test.labels.npy    and labels (int32 N), eval-mode BN,
                                        inputs (pixels/255 - 0.2860) / 0.3530
  OUT/checkpoint.safetensors            encoder + head under contrast's names
                                        (encoder.conv1.weight, head.0.weight...):
                                        `contrast eval|embed --checkpoint` read it
  OUT/summary.json                      settings, losses, times

Defaults are the PyTorch recipe of the issue; every difference from
contrast can be switched to contrast's behaviour, one at a time:

  --init default | kaiming_fan_out   PyTorch's default conv init (kaiming_uniform
                                     a=sqrt(5): U(+-1/sqrt(fan_in))) | torchvision's
                                     ResNet init (N(0, 2/fan_out)), contrast's default
  --optimizer adam | adamw           Adam (L2 added to the gradient, every tensor) |
  --weight-decay W                   AdamW (decoupled); contrast: adamw, 0
  --crop affine | torchvision        a real-valued box sampled by affine_grid +
                                     grid_sample (bilinear, border padding at the
                                     image edge) | torchvision's integer box resampled
                                     inside the crop (contrast's random_resized_crop)
  --jitter-order fixed | random      brightness then contrast | torchvision's random
                                     order (contrast's color_jitter)
  --no-jitter-clamp                  do not clamp to [0, 1] after each adjustment
  --schedule contrast | torch        cosine reaching 0 at the last step (contrast's
                                     schedule) | CosineAnnealingLR(T_max = steps)

Batch norm (momentum 0.1, eps 1e-5, unbiased running variance, one forward
over all 2N views), the head's init (nn.Linear default) and Adam's betas/eps
are the same on both sides and have no switch.

Run with Debian's torch (bench-only; never a dependency of contrast):
  GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \\
  /usr/bin/python3 bench/simclr_recipe_pytorch.py --seed 0 --out runs/pt_seed0
Quick check (a few seconds of training, small feature sets):
  /usr/bin/python3 bench/simclr_recipe_pytorch.py --steps 20 --train-limit 2000 --test-limit 1000 --out /tmp/pt
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--out", required=True, help="output folder (created)")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--steps", type=int, default=0, help="stop after this many steps; the cosine spans them (0: all)")
p.add_argument("--batch", type=int, default=256)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--temperature", type=float, default=0.5)
p.add_argument("--optimizer", choices=("adam", "adamw"), default="adam")
p.add_argument("--weight-decay", type=float, default=1e-6)
p.add_argument("--init", choices=("default", "kaiming_fan_out"), default="default")
p.add_argument("--crop", choices=("affine", "torchvision"), default="affine")
p.add_argument("--jitter-order", choices=("fixed", "random"), default="fixed")
p.add_argument("--no-jitter-clamp", action="store_true")
p.add_argument("--schedule", choices=("contrast", "torch"), default="contrast")
p.add_argument("--train-limit", type=int, default=0, help="use the first N training images (0: all)")
p.add_argument("--test-limit", type=int, default=0, help="use the first N test images (0: all)")
p.add_argument("--log-every", type=int, default=25)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
args = p.parse_args()

# Thread counts must be set before torch is imported (it starts with 1 here).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
MEAN, STD = 0.2860, 0.3530
SIDE = 28


def read_idx(path, limit):
    """An idx file (gzip or not): uint8 images (N,1,28,28) or labels (N)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if limit:
        n = min(n, limit)
    if magic == 0x803:
        return torch.frombuffer(bytearray(data[16:16 + 784 * n]), dtype=torch.uint8).view(n, 1, 28, 28)
    if magic == 0x801:
        return torch.frombuffer(bytearray(data[8:8 + n]), dtype=torch.uint8).long()
    sys.exit(f"{path}: not an idx image or label file (magic {magic:#x})")


def split(name, limit):
    x = read_idx(os.path.join(args.data, f"{name}-images-idx3-ubyte.gz"), limit)
    y = read_idx(os.path.join(args.data, f"{name}-labels-idx1-ubyte.gz"), limit)
    return x.float() / 255.0, y


# ---- model: torchvision's names, so the checkpoint maps onto contrast's ----

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
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + idt)


class Encoder(nn.Module):
    def __init__(self, init):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.layer1 = nn.Sequential(BasicBlock(32, 32, 1))
        self.layer2 = nn.Sequential(BasicBlock(32, 64, 2))
        self.layer3 = nn.Sequential(BasicBlock(64, 128, 2))
        if init == "kaiming_fan_out":  # torchvision's ResNet (contrast's default)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def nt_xent(z, t):
    """Rows i and i+n are positives; every other row is a negative."""
    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    s = z @ z.t() / t
    s.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(s, target)


# ---- augmentation, batched (one draw per sample) ----------------------------

LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))
SCALE = (0.3, 1.0)


def crop_boxes(n, g):
    """Crop boxes (x0, y0, w, h) in pixels, torchvision's RandomResizedCrop
    draw: ten tries of area and log-ratio, then the whole image (which is
    inside the ratio range for a square image). --crop torchvision rounds
    the size and draws an integer offset, as torchvision (and contrast) do."""
    area = float(SIDE * SIDE)
    w = torch.full((n,), float(SIDE))
    h = torch.full((n,), float(SIDE))
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(10):
        a = area * torch.empty(n).uniform_(*SCALE, generator=g)
        r = torch.exp(torch.empty(n).uniform_(*LOG_RATIO, generator=g))
        cw, ch = torch.sqrt(a * r), torch.sqrt(a / r)
        if args.crop == "torchvision":
            cw, ch = torch.round(cw), torch.round(ch)
        ok = ~done & (cw > 0) & (cw <= SIDE) & (ch > 0) & (ch <= SIDE)
        w, h = torch.where(ok, cw, w), torch.where(ok, ch, h)
        done |= ok
    u, v = torch.rand(n, generator=g), torch.rand(n, generator=g)
    if args.crop == "torchvision":
        x0 = torch.floor(u * (SIDE - w + 1)).clamp(max=SIDE - w)
        y0 = torch.floor(v * (SIDE - h + 1)).clamp(max=SIDE - h)
    else:
        x0, y0 = u * (SIDE - w), v * (SIDE - h)
    return x0, y0, w, h


def random_resized_crop(x, g):
    n = x.shape[0]
    x0, y0, w, h = crop_boxes(n, g)
    if args.crop == "affine":
        # Output pixel centres mapped onto the box; outside the image the
        # border pixel (padding_mode="border"), inside it the neighbours of
        # the box take part in the interpolation.
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = w / SIDE
        theta[:, 0, 2] = (2 * x0 + w) / SIDE - 1
        theta[:, 1, 1] = h / SIDE
        theta[:, 1, 2] = (2 * y0 + h) / SIDE - 1
        grid = F.affine_grid(theta, (n, 1, SIDE, SIDE), align_corners=False)
    else:
        # The same centres, clamped to the box: the crop is resampled on
        # its own (torchvision's resized_crop, contrast's crop_resize).
        i = torch.arange(SIDE, dtype=torch.float32) + 0.5
        xs = x0[:, None] + i[None, :] * (w / SIDE)[:, None] - 0.5
        ys = y0[:, None] + i[None, :] * (h / SIDE)[:, None] - 0.5
        xs = torch.maximum(torch.minimum(xs, (x0 + w - 1)[:, None]), x0[:, None])
        ys = torch.maximum(torch.minimum(ys, (y0 + h - 1)[:, None]), y0[:, None])
        gx, gy = (2 * xs + 1) / SIDE - 1, (2 * ys + 1) / SIDE - 1
        grid = torch.stack([gx[:, None, :].expand(n, SIDE, SIDE), gy[:, :, None].expand(n, SIDE, SIDE)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def hflip(x, g):
    flip = torch.rand(x.shape[0], generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def color_jitter(x, g):
    """Brightness and contrast 0.4 (factors in [0.6, 1.4]) with p 0.8."""
    n = x.shape[0]
    on = (torch.rand(n, generator=g) < 0.8)[:, None, None, None]
    b = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
    c = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=g)
    clamp = (lambda t: t) if args.no_jitter_clamp else (lambda t: t.clamp(0.0, 1.0))

    def bright(t):
        return clamp(t * b)

    def contr(t):
        m = t.mean(dim=(1, 2, 3), keepdim=True)
        return clamp(c * t + (1 - c) * m)

    y = contr(bright(x))
    if args.jitter_order == "random":  # torchvision: a random permutation
        contrast_first = (torch.rand(n, generator=g) < 0.5)[:, None, None, None]
        y = torch.where(contrast_first, bright(contr(x)), y)
    return torch.where(on, y, x)


def augment(x, g):
    x = color_jitter(hflip(random_resized_crop(x, g), g), g)
    return (x - MEAN) / STD


# ---- outputs ------------------------------------------------------------------

def save_safetensors(path, tensors, meta):
    """safetensors: u64 header length, JSON header, raw little-endian data."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


@torch.no_grad()
def features(enc, x):
    enc.eval()
    out = [enc((x[i:i + 1000] - MEAN) / STD) for i in range(0, x.shape[0], 1000)]
    return torch.cat(out).numpy().astype(np.float32)


def main():
    os.makedirs(args.out, exist_ok=True)
    xtr, ytr = split("train", args.train_limit)
    xte, yte = split("t10k", args.test_limit)
    enc = Encoder(args.init)
    head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
    model = nn.Sequential(enc, head)
    params = model.parameters()
    if args.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    per_epoch = xtr.shape[0] // args.batch  # drop_last, as contrast
    total = per_epoch * args.epochs
    if args.steps:  # as contrast's train.max_steps: the schedule spans the shorter run
        total = min(total, args.steps)
    if total < 1:
        sys.exit(f"no training step: {xtr.shape[0]} images, batch {args.batch}, {args.epochs} epochs")
    if args.schedule == "contrast":  # from lr at step 0 to 0 at the last step
        lam = (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total - 1) / (total - 1)))) if total > 1 else (lambda s: 1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    g = torch.Generator().manual_seed(args.seed)
    losses, step, t0 = [], 0, time.perf_counter()
    model.train()
    while step < total:
        order = torch.randperm(xtr.shape[0], generator=g)
        for k in range(per_epoch):
            if step >= total:
                break
            x = xtr[order[k * args.batch:(k + 1) * args.batch]]
            views = torch.cat([augment(x, g), augment(x, g)])  # one forward: BN sees all 2N
            loss = nt_xent(model(views), args.temperature)
            if not torch.isfinite(loss):
                sys.exit(f"loss became {float(loss)} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
            step += 1
            if step % args.log_every == 0 or step == total:
                el = time.perf_counter() - t0
                print(f"step {step}/{total} loss {np.mean(losses[-args.log_every:]):.4f} "
                      f"{2 * args.batch * step / el:.0f} views/s", flush=True)
    train_s = time.perf_counter() - t0
    for name, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        f = features(enc, x)
        if not np.isfinite(f).all():
            sys.exit(f"{name} features hold {int((~np.isfinite(f)).sum())} non-finite values")
        np.save(os.path.join(args.out, f"{name}.npy"), f)
        np.save(os.path.join(args.out, f"{name}.labels.npy"), y.numpy().astype(np.int32))
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    settings = {k: v for k, v in vars(args).items()}
    save_safetensors(os.path.join(args.out, "checkpoint.safetensors"), state,
                     {"format": "pytorch-simclr-recipe", "settings": json.dumps(settings)})
    summary = {"engine": "pytorch " + torch.__version__, "settings": settings, "steps": step,
               "train_seconds": round(train_s, 1), "loss_first": round(float(np.mean(losses[:5])), 4),
               "loss_last25": round(float(np.mean(losses[-25:])), 4)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


main()
