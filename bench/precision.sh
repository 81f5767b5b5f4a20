#!/bin/sh
# Alternated A/B of the reference training step in bfloat16 against float32
# (build/bench/step --precision bf16 | fp32, configs/bench_step.cfg's
# encoder, batch 256), at 2 and 1 threads. Each round runs bf16 then fp32
# at one thread count, then the other count, so a change of machine load
# does not favour one side; quote every round. Prints one line per run:
# round, threads, precision asked and run, views/s (median step), process
# CPU ms per step, peak RSS MB, the loss after the last step, load average.
#
#   bench/precision.sh [ROUNDS] [BUILD_DIR] [STEPS]   # defaults: 3, build/, 6
set -eu
rounds=${1:-3}
build=${2:-build}
steps=${3:-6}
step="$build/bench/step"
[ -x "$step" ] || { echo "precision.sh: $step not built (cmake --build $build)" >&2; exit 2; }

field() { # json key
    sed -n "s/.*\"$1\": \"\{0,1\}\([^,\"}]*\).*/\1/p"
}

for r in $(seq 1 "$rounds"); do
    for t in 2 1; do
        for p in bf16 fp32; do
            out=$("$step" --threads "$t" --batch 256 --steps "$steps" --precision "$p" | tail -n 1)
            printf '%s\t%s threads\t%s (ran %s)\t%8s views/s\t%6s cpu ms/step\t%8s MB\tloss %s\tload %s\n' \
                "$r" "$t" "$p" "$(printf '%s\n' "$out" | field precision)" \
                "$(printf '%s\n' "$out" | field views_per_s)" "$(printf '%s\n' "$out" | field cpu_ms_per_step)" \
                "$(printf '%s\n' "$out" | field peak_rss_mb)" "$(printf '%s\n' "$out" | field loss)" \
                "$(cut -d' ' -f1-3 /proc/loadavg)"
        done
    done
done
