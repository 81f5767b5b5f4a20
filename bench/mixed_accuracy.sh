#!/bin/sh
# The mixed-pipeline rows of bench/accuracy.md (issue 14): configs/
# mixed_fmnist.cfg trained three ways with the same encoder (clip_resnet),
# seeds, schedule and number of steps (train.max_steps):
#   images   the image pipeline alone (--set pipelines.[1].weight=0)
#   clips    the clip pipeline alone  (--set pipelines.[0].weight=0)
#   mixed    both, their losses summed, one encoder
# plus random, the untrained encoder; then every row's final checkpoint
# through the config's six evaluators (image kNN / linear on Fashion-MNIST,
# clip class and clip direction kNN / linear on moving Fashion-MNIST).
#
#   bench/mixed_accuracy.sh [BUILD_DIR] [OUT_DIR] [ROW...]   # from the repository root
#
# ROWs default to "random images clips mixed". A row whose run already has
# its final checkpoint is not retrained. The config evaluates with precise
# batch norm (evaluation.precise_bn_batches = 32); EVAL_ARGS adds options
# to every `contrast eval`, e.g. EVAL_ARGS="--set evaluation.precise_bn_batches=0"
# for the checkpoints' own running statistics (use another OUT_DIR's
# results.md, or the rows are appended to the same table). Results go to OUT_DIR/results.md
# (one markdown row per ROW) and OUT_DIR/*.log (with /usr/bin/time -v).
set -eu
build=${1:-build}
out=${2:-runs/mixed_accuracy}
[ $# -ge 2 ] && shift 2 || shift $#
rows=${*:-random images clips mixed}
contrast="$build/contrast"
cfg=configs/mixed_fmnist.cfg
mkdir -p "$out"
[ -d data/moving-fmnist ] || "$contrast" make-dataset moving-fmnist data/moving-fmnist
[ -f "$out/results.md" ] || {
    echo "| row | image kNN | image linear | clip class kNN | clip class linear | direction kNN | direction linear |"
    echo "|---|---|---|---|---|---|---|"
} > "$out/results.md"

# train NAME [--set ...]: the run's last checkpoint on stdout
train() {
    name=$1
    shift
    run="$out/$name"
    if [ ! -f "$run/done" ]; then
        if ls "$run"/checkpoint-s*[0-9].safetensors >/dev/null 2>&1; then resume="--resume $run"; else resume=""; fi
        /usr/bin/time -v "$contrast" train "$cfg" --run-dir "$run" $resume --set "evaluation.evaluators=()" "$@" \
            > "$out/$name.train.log" 2>&1
        touch "$run/done"
    fi
    ls "$run"/checkpoint-s*[0-9].safetensors | tail -n 1
}

# probe ROW CKPT: every evaluator of the config, one results.md row
probe() {
    row=$1 ckpt=$2
    log="$out/$row.eval.log"
    if [ "$ckpt" = none ]; then ckarg=""; else ckarg="--checkpoint $ckpt"; fi
    /usr/bin/time -v "$contrast" eval "$cfg" $ckarg ${EVAL_ARGS:-} > "$log" 2>&1
    line="| $row |"
    for m in knn linear knn@clips_test linear@clips_test knn@clips_test_direction linear@clips_test_direction; do
        line="$line $(sed -n "s/^$m\.top1 //p" "$log") |"
    done
    echo "$line" | tee -a "$out/results.md"
}

for row in $rows; do
    case $row in
    random) probe random none ;;
    images) probe images "$(train images --set pipelines.[1].weight=0)" ;;
    clips) probe clips "$(train clips --set pipelines.[0].weight=0)" ;;
    mixed) probe mixed "$(train mixed)" ;;
    *) echo "unknown row $row (random images clips mixed)" >&2; exit 2 ;;
    esac
done
