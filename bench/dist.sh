#!/bin/bash
# Data-parallel throughput: 2 ranks x 1 thread (mpirun) against 1 process x
# 2 threads, the SimCLR reference model of configs/simclr_fmnist.cfg
# (global batch 256, 2 views), alternated A B A B ... so that a machine
# whose speed drifts hurts both alike. Per run: the median views/s of steps
# 3..STEPS from metrics.jsonl (set-up and the first steps excluded) and, for
# the 2-rank runs, rank 0's time in the collectives.
#
#   bench/dist.sh [ROUNDS] [STEPS] [BUILD_DIR]        (defaults 3, 12, build)
set -euo pipefail
rounds=${1:-3}
steps=${2:-12}
build=${3:-build}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The experiment without its evaluators (training throughput only).
sed '/^evaluation = {/,$d' "$root/configs/simclr_fmnist.cfg" > "$tmp/bench.cfg"
export CONTRAST_PLUGIN_PATH="$root/$build/plugins"
common=(train "$tmp/bench.cfg" --set train.max_steps="$steps" --set train.log_every=1000)

median_vps() { # metrics.jsonl -> median views/s of steps >= 2
  grep '"type": "step"' "$1" | sed 's/.*"step": \([0-9]*\),.*"views_per_s": \([0-9.]*\).*/\1 \2/' |
    awk '$1 >= 2 {print $2}' | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "round  2 ranks x 1 thread  1 process x 2 threads  ratio   collectives (rank 0)"
for r in $(seq 1 "$rounds"); do
  rm -rf "$tmp/a" "$tmp/b"
  mpirun --oversubscribe --allow-run-as-root --bind-to none -np 2 "$root/$build/contrast" "${common[@]}" \
    --set train.threads=1 --run-dir "$tmp/a" > "$tmp/a.log" 2>&1
  "$root/$build/contrast" "${common[@]}" --set train.threads=2 --run-dir "$tmp/b" > "$tmp/b.log" 2>&1
  a=$(median_vps "$tmp/a/metrics.jsonl")
  b=$(median_vps "$tmp/b/metrics.jsonl")
  comm=$(grep -o 'in collectives: .*' "$tmp/a.log" | sed 's/in collectives: //')
  printf "%5d  %18.0f  %22.0f  %5.2f   %s\n" "$r" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')" "$comm"
done
