#!/usr/bin/python3
"""The shared probe of issue 19: one scorer for contrast's and PyTorch's features.

Reads TRAIN.npy / TEST.npy (float32 N x D) and their labels
(TRAIN.labels.npy / TEST.labels.npy, int32 N), the files written by
`contrast embed` and by bench/simclr_recipe_pytorch.py, and prints one JSON
line with the top-1/top-5 (percent, on the test split) of

  knn     L2-normalised features, cosine similarity, the k = 200 most similar
          training rows vote exp(sim / 0.1) for their class (Wu et al. 2018);
          ties go to the lower class
  linear  features standardised with the training split's mean and
          (population) std, multinomial logistic regression from zeros, the
          mean cross-entropy plus (1e-4 / 2) ||W||^2 (bias not penalised),
          Adam 0.01 with a cosine decay to 0 over 60 epochs of batch 512
          (last batch partial), shuffled per epoch from --seed

which are the definitions (and settings) of contrast's knn and linear
evaluators (plugins/evaluator/{knn,linear}); the arithmetic and the
shuffles are PyTorch's, so numbers agree with contrast's own evaluators to
about 0.1 point, not bit for bit. Both sides of a comparison must be
scored by this script.

  /usr/bin/python3 bench/probe_features.py --train A/train.npy --test A/test.npy [--seed 0]
"""
import argparse
import json
import math
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--train", required=True)
p.add_argument("--test", required=True)
p.add_argument("--seed", type=int, default=0, help="shuffle seed of the linear probe")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--k", type=int, default=200)
p.add_argument("--knn-temperature", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=60)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--weight-decay", type=float, default=1e-4)
p.add_argument("--batch", type=int, default=512)
args = p.parse_args()

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)


def labels_path(path):
    return (path[:-4] if path.endswith(".npy") else path) + ".labels.npy"


def load(path):
    x = np.load(path)
    y = np.load(labels_path(path))
    if x.ndim != 2 or x.dtype != np.float32:
        sys.exit(f"{path}: expected float32 (N, D), got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],):
        sys.exit(f"{labels_path(path)}: {y.shape[0] if y.ndim else 0} labels for {x.shape[0]} rows")
    bad = int((~np.isfinite(x)).sum())
    if bad:
        sys.exit(f"{path}: {bad} non-finite values")
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def rank_hits(scores, y):
    """top-1 / top-5 counts; a class ranks above the truth when it scores
    more, or as much with a lower index (contrast's deterministic argmax)."""
    s_true = scores.gather(1, y[:, None])
    idx = torch.arange(scores.shape[1])[None, :]
    better = ((scores > s_true) | ((scores == s_true) & (idx < y[:, None]))).sum(1)
    return int((better == 0).sum()), int((better < 5).sum())


def knn(xtr, ytr, xte, yte, classes):
    tr, te = F.normalize(xtr, dim=1, eps=1e-12), F.normalize(xte, dim=1, eps=1e-12)
    k = min(args.k, tr.shape[0])
    h1 = h5 = 0
    for at in range(0, te.shape[0], 256):
        sim = te[at:at + 256] @ tr.t()
        val, ix = sim.topk(k, dim=1)
        w = torch.exp(val.double() / args.knn_temperature)
        votes = torch.zeros(val.shape[0], classes, dtype=torch.float64).scatter_add_(1, ytr[ix], w)
        a, b = rank_hits(votes, yte[at:at + 256])
        h1, h5 = h1 + a, h5 + b
    return 100.0 * h1 / te.shape[0], 100.0 * h5 / te.shape[0]


def linear(xtr, ytr, xte, yte, classes):
    mean = xtr.double().mean(0)
    sd = xtr.double().std(0, unbiased=False)
    inv = torch.where(sd > 1e-8, 1.0 / sd, torch.ones_like(sd))
    tr, te = ((xtr - mean) * inv).float(), ((xte - mean) * inv).float()
    w = torch.zeros(classes, tr.shape[1], requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=args.lr)
    bs = min(args.batch, tr.shape[0])
    per_epoch = (tr.shape[0] + bs - 1) // bs
    total = per_epoch * args.epochs
    g = torch.Generator().manual_seed(args.seed)
    step = 0
    for _ in range(args.epochs):
        order = torch.randperm(tr.shape[0], generator=g)
        for at in range(0, tr.shape[0], bs):
            # contrast's cosine: from lr at step 0 to 0 at the last step
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / (total - 1))) if total > 1 else args.lr
            for group in opt.param_groups:
                group["lr"] = lr
            rows = order[at:at + bs]
            loss = F.cross_entropy(tr[rows] @ w.t() + b, ytr[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not torch.isfinite(loss):
                sys.exit(f"linear: loss became {float(loss)}")
            w.grad += args.weight_decay * w.detach()
            opt.step()
            step += 1
    with torch.no_grad():
        return tuple(100.0 * h / te.shape[0] for h in rank_hits(te @ w.t() + b, yte))


def main():
    xtr, ytr = load(args.train)
    xte, yte = load(args.test)
    if xtr.shape[1] != xte.shape[1]:
        sys.exit(f"train features have {xtr.shape[1]} columns, test features {xte.shape[1]}")
    keep, keep_te = ytr >= 0, yte >= 0  # unlabelled rows are neither fitted nor scored
    xtr, ytr, xte, yte = xtr[keep], ytr[keep], xte[keep_te], yte[keep_te]
    classes = int(max(ytr.max(), yte.max())) + 1
    t0 = time.perf_counter()
    k1, k5 = knn(xtr, ytr, xte, yte, classes)
    t1 = time.perf_counter()
    l1, l5 = linear(xtr, ytr, xte, yte, classes)
    t2 = time.perf_counter()
    print(json.dumps({"train": args.train, "test": args.test, "n_train": xtr.shape[0], "n_test": xte.shape[0],
                      "dim": xtr.shape[1], "knn_top1": round(k1, 2), "knn_top5": round(k5, 2),
                      "linear_top1": round(l1, 2), "linear_top5": round(l5, 2),
                      "knn_s": round(t1 - t0, 1), "linear_s": round(t2 - t1, 1)}))


main()
