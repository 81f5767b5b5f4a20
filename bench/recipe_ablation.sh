#!/bin/bash
# Issue 19: the 4-epoch SimCLR recipe of configs/simclr_fmnist.cfg trained
# by contrast and by PyTorch (bench/simclr_recipe_pytorch.py) for a list of
# settings and seeds, every run's encoder features scored by one probe
# (bench/probe_features.py: standardised logistic regression, kNN k 200
# T 0.1), and mean / spread per setting written as a markdown table.
#
#   bench/recipe_ablation.sh [--settings FILE] [--only NAME,...] [--seeds "0 1 2"]
#       [--out DIR] [--build DIR] [--threads N] [--quick]
#       [--contrast-extra "--set k=v ..."] [--pytorch-extra "ARGS"] [--table]
#
#   --settings  lines "SIDE NAME ARGS..." (default bench/recipe_settings.txt)
#   --only      run only these setting names (comma-separated)
#   --seeds     training seeds (default "0 1 2"); the probe's own seed is 0
#   --out       results folder (default runs/recipe_ablation); a run whose
#               probe.json exists is not run again, so an interrupted
#               sweep continues where it stopped
#   --quick     a check of the plumbing, not a measurement: 20 steps on the
#               first 2,000 training images, 1,000 test images
#   --table     run nothing: only write results.tsv and table.md from the
#               runs already in OUT for the selected settings
#
# Per run, under OUT/NAME/seedS/: the run's own files (contrast: run
# directory with config.cfg, metrics.jsonl, summary.txt with contrast's own
# evaluators; pytorch: summary.json, checkpoint.safetensors), train.npy /
# test.npy with labels, probe.json, log. OUT/results.tsv has one line per
# run, OUT/table.md the table. Runs go one at a time, seed by seed over the
# settings, so a partial sweep has every setting at the same seeds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
settings="$root/bench/recipe_settings.txt"
only=""
seeds="0 1 2"
out="runs/recipe_ablation"
build="$root/build"
threads=2
c_extra=()
p_extra=()
quick=0
table_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --settings) settings="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --table) table_only=1; shift ;;
    --contrast-extra) set -f; c_extra+=($2); set +f; shift 2 ;;
    --pytorch-extra) set -f; p_extra+=($2); set +f; shift 2 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "recipe_ablation.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  c_extra+=(--set train.max_steps=20 --set data.train.limit=2000 --set data.test.limit=1000)
  p_extra+=(--steps 20 --train-limit 2000 --test-limit 1000)
fi
contrast="$build/contrast"
[ -x "$contrast" ] || { echo "recipe_ablation.sh: $contrast not built (cmake --build build)" >&2; exit 2; }
[ -r "$settings" ] || { echo "recipe_ablation.sh: cannot read $settings" >&2; exit 2; }
/usr/bin/python3 -c "import torch, numpy" 2>/dev/null ||
  { echo "recipe_ablation.sh: needs Debian's python3-torch and python3-numpy (/usr/bin/python3)" >&2; exit 2; }
export CONTRAST_PLUGIN_PATH="$build/plugins"
# PyTorch at its best here (PEERS.md): glibc keeps freed memory.
tunables=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cfg="$root/configs/simclr_fmnist.cfg"

# The settings: sides, names and argument strings, in file order.
sides=(); names=(); argss=()
while read -r side name rest; do
  case "$side" in ''|'#'*) continue ;; esac
  [ "$side" = contrast ] || [ "$side" = pytorch ] ||
    { echo "recipe_ablation.sh: $settings: side '$side' of '$name' is not contrast or pytorch" >&2; exit 2; }
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  sides+=("$side"); names+=("$name"); argss+=("$rest")
done < "$settings"
[ ${#names[@]} -gt 0 ] || { echo "recipe_ablation.sh: no setting selected from $settings" >&2; exit 2; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown); settings ${names[*]}; seeds $seeds"

run_contrast() { # dir seed args...
  local dir="$1" seed="$2"; shift 2
  nice -n 5 "$contrast" train "$cfg" --set seed="$seed" --set train.threads="$threads" \
    --set train.checkpoint_every=0 --set train.keep=1 "$@" "${c_extra[@]}" --run-dir "$dir/run"
  local ck
  ck=$(ls "$dir"/run/checkpoint-s*.safetensors | grep -v '\.state\.' | sort | tail -n 1)
  for split in train test; do
    nice -n 5 "$contrast" embed "$dir/run/config.cfg" --checkpoint "$ck" --split "$split" \
      --out "$dir/$split.npy" --force --threads "$threads"
  done
}

run_pytorch() { # dir seed args...
  local dir="$1" seed="$2"; shift 2
  GLIBC_TUNABLES=$tunables nice -n 5 /usr/bin/python3 "$root/bench/simclr_recipe_pytorch.py" --seed "$seed" \
    --threads "$threads" "$@" "${p_extra[@]}" --out "$dir"
}

for seed in $seeds; do
  [ "$table_only" = 1 ] && break
  for i in "${!names[@]}"; do
    side=${sides[$i]} name=${names[$i]}
    dir="$out/$name/seed$seed"
    [ -s "$dir/probe.json" ] && { echo "skip $side $name seed $seed (done)"; continue; }
    mkdir -p "$dir"
    set -f; args=(${argss[$i]}); set +f
    echo "$(date -u +%H:%M:%S) $side $name seed $seed: ${args[*]:-(defaults)}"
    t0=$(date +%s)
    if ! "run_$side" "$dir" "$seed" "${args[@]}" > "$dir/log" 2>&1; then
      echo "  FAILED, see $dir/log:"; tail -n 5 "$dir/log" | sed 's/^/  /'; continue
    fi
    t1=$(date +%s)
    if ! nice -n 5 /usr/bin/python3 "$root/bench/probe_features.py" --train "$dir/train.npy" --test "$dir/test.npy" \
        --threads "$threads" > "$dir/probe.json.tmp" 2>> "$dir/log"; then
      echo "  probe FAILED, see $dir/log"; continue
    fi
    mv "$dir/probe.json.tmp" "$dir/probe.json"
    echo "  $(( t1 - t0 )) s; $(cat "$dir/probe.json")"
  done
done

# results.tsv and table.md from every probe.json of the selected settings.
/usr/bin/python3 - "$out" "$seeds" "${#names[@]}" "${sides[@]}" "${names[@]}" <<'EOF'
import json, os, re, statistics, sys
out, seeds, n = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
sides, names = sys.argv[4:4 + n], sys.argv[4 + n:4 + 2 * n]

def own(dir):  # contrast's own evaluators of the run (summary.txt), if any
    try:
        text = open(os.path.join(dir, "run", "summary.txt")).read()
    except OSError:
        return "", ""
    get = lambda k: (re.search(r"^%s\s+(\S+)" % re.escape(k), text, re.M) or [None, ""])[1]
    return get("knn.top1"), get("linear.top1")

rows, per = [], {}
for side, name in zip(sides, names):
    for s in seeds:
        d = os.path.join(out, name, "seed" + s)
        try:
            p = json.load(open(os.path.join(d, "probe.json")))
        except (OSError, ValueError):
            continue
        ok, ol = own(d)
        rows.append([side, name, s, p["knn_top1"], p["linear_top1"], ok, ol, p["n_train"], p["n_test"]])
        per.setdefault(name, (side, []))[1].append((p["knn_top1"], p["linear_top1"]))
with open(os.path.join(out, "results.tsv"), "w") as f:
    f.write("side\tsetting\tseed\tknn_top1\tlinear_top1\tcontrast_own_knn\tcontrast_own_linear\tn_train\tn_test\n")
    for r in rows:
        f.write("\t".join(str(x) for x in r) + "\n")

def stats(v):
    m = statistics.mean(v)
    sd = statistics.stdev(v) if len(v) > 1 else float("nan")
    return m, sd, min(v), max(v)

ref = next((nm for sd, nm in zip(sides, names) if sd == "pytorch" and nm in per), None)
refm = [stats([x[k] for x in per[ref][1]])[0] for k in (0, 1)] if ref else None
lines = ["| side | setting | seeds | kNN top-1 mean ± sd [min, max] | linear top-1 mean ± sd [min, max] | "
         "Δ kNN / Δ linear vs %s |" % (ref or "(no pytorch row)"), "|---|---|---|---|---|---|"]
for side, name in zip(sides, names):
    if name not in per:
        continue
    v = per[name][1]
    cells = []
    for k in (0, 1):
        m, sd, lo, hi = stats([x[k] for x in v])
        sd_text = "%.2f" % sd if len(v) > 1 else "-"  # one seed: no spread
        cells.append("%.2f ± %s [%.2f, %.2f]" % (m, sd_text, lo, hi))
    delta = ""
    if refm:
        delta = "%+.2f / %+.2f" % tuple(stats([x[k] for x in v])[0] - refm[k] for k in (0, 1))
    lines.append("| %s | %s | %d | %s | %s | %s |" % (side, name, len(v), cells[0], cells[1], delta))
open(os.path.join(out, "table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print("wrote %s and %s" % (os.path.join(out, "results.tsv"), os.path.join(out, "table.md")))
EOF
