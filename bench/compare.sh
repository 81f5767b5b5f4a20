#!/bin/sh
# Alternated A/B of the training step: contrast (build/bench/step) against
# PyTorch (bench/peer_pytorch.py, channels-last and NCHW), at 1 and 2
# threads, batch 256. Alternating the programs round by round keeps a
# change of machine load from favouring one side; run it on a quiet machine
# and quote every round, not the best.
#
#   bench/compare.sh [ROUNDS] [BUILD_DIR]      # defaults: 3 rounds, build/
#
# Needs Debian's python3-torch (/usr/bin/python3). Prints one line per run:
# round, threads, engine, views/s, peak RSS MB, and the load average.
set -eu
rounds=${1:-3}
build=${2:-build}
here=$(cd "$(dirname "$0")" && pwd)
step="$build/bench/step"
[ -x "$step" ] || { echo "compare.sh: $step not built (cmake --build $build)" >&2; exit 2; }
# PyTorch at its best here: glibc keeps freed memory instead of returning it.
tunables=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184

field() { # json key
    sed -n "s/.*\"$1\": \"\{0,1\}\([^,\"}]*\).*/\1/p"
}

report() { # round threads engine json
    v=$(printf '%s\n' "$4" | field views_per_s)
    m=$(printf '%s\n' "$4" | field peak_rss_mb)
    printf '%s\t%s\t%-22s\t%8s views/s\t%8s MB\tload %s\n' "$1" "$2" "$3" "$v" "$m" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
}

for r in $(seq 1 "$rounds"); do
    for t in 2 1; do
        out=$("$step" --threads "$t" --batch 256 --steps 6 | tail -n 1)
        report "$r" "$t" contrast "$out"
        out=$(GLIBC_TUNABLES=$tunables /usr/bin/python3 "$here/peer_pytorch.py" --threads "$t" --batch 256 \
              --steps 6 --channels-last 2>/dev/null | tail -n 1)
        report "$r" "$t" "pytorch channels-last" "$out"
        out=$(GLIBC_TUNABLES=$tunables /usr/bin/python3 "$here/peer_pytorch.py" --threads "$t" --batch 256 \
              --steps 6 2>/dev/null | tail -n 1)
        report "$r" "$t" "pytorch NCHW" "$out"
    done
done
