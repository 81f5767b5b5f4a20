#!/bin/sh
# The video rows of bench/accuracy.md (issue 13): on moving Fashion-MNIST,
# with the same budget (configs' 10 epochs of 1000 videos, batch 64), the
# item-class and motion-direction accuracies (kNN and linear probe) of
#   random   the random-init clip encoder,
#   frames   an image SimCLR encoder on single frames, averaged over a clip,
#   cvrl     CVRL (clip_pair, decreasing gap, end_to_end),
#   gap0 / uniform  CVRL with the gap ablations,
# plus the control: CVRL's direction probe on test clips whose frames are
# shuffled (evaluation.shuffle_test_frames), which should fall to chance.
# With LEVERS=1, issue 13's levers, one at a time at the same budget:
#   sk3      spatial_kernel = 3 in the temporal block,
#   runs8    hard negatives: pipelines[0].label_runs = 8 over train_item
#            (batches of 8 items x 8 videos; appearance cannot tell them apart).
#
#   [LEVERS=1] bench/video_accuracy.sh [BUILD_DIR] [OUT_DIR]    # from the repository root
#
# A row whose run already has its final checkpoint is not retrained, so an
# interrupted run of this script continues where it stopped. Results go to
# OUT_DIR/results.md (one markdown row per probe) and OUT_DIR/*.log.
set -eu
build=${1:-build}
out=${2:-runs/video_accuracy}
contrast="$build/contrast"
mkdir -p "$out"
# reused when it exists with these parameters (format 2: with the item lists)
"$contrast" make-dataset moving-fmnist data/moving-fmnist

# train NAME CONFIG [--set ...]: the run's last checkpoint on stdout
train() {
    name=$1 cfg=$2
    shift 2
    run="$out/$name"
    if ! ls "$run"/checkpoint-s*[0-9].safetensors >/dev/null 2>&1 || [ ! -f "$run/done" ]; then
        if ls "$run"/checkpoint-s*[0-9].safetensors >/dev/null 2>&1; then resume="--resume $run"; else resume=""; fi
        /usr/bin/time -v "$contrast" train "$cfg" --run-dir "$run" $resume --set "evaluation.evaluators=()" "$@" \
            > "$out/$name.train.log" 2>&1
        touch "$run/done"
    fi
    ls "$run"/checkpoint-s*[0-9].safetensors | tail -n 1
}

# probe ROW LABEL CKPT [--set ...]: one results.md row from contrast eval
probe() {
    row=$1 label=$2 ckpt=$3
    shift 3
    log="$out/$row-$label.eval.log"
    if [ "$label" = class ]; then sets=""; else
        sets="--set evaluation.train=train_direction --set evaluation.test=test_direction"; fi
    if [ "$ckpt" = none ]; then ckarg=""; else ckarg="--checkpoint $ckpt"; fi
    /usr/bin/time -v "$contrast" eval configs/cvrl_fmnist.cfg $ckarg $sets "$@" > "$log" 2>&1
    knn=$(sed -n 's/^knn.top1 //p' "$log")
    lin=$(sed -n 's/^linear.top1 //p' "$log")
    echo "| $row | $label | $knn | $lin |" | tee -a "$out/results.md"
}

echo "| row | labels | kNN top-1 | linear top-1 |" > "$out/results.md"
echo "|---|---|---|---|" >> "$out/results.md"
probe random class none
probe random direction none
probe random direction-shuffled none --set evaluation.shuffle_test_frames=true
ck=$(train frames configs/simclr_frames_fmnist.cfg)
probe frames class "$ck" --set encoder.temporal_layers=0
probe frames direction "$ck" --set encoder.temporal_layers=0
ck=$(train cvrl configs/cvrl_fmnist.cfg)
probe cvrl class "$ck"
probe cvrl direction "$ck"
probe cvrl direction-shuffled "$ck" --set evaluation.shuffle_test_frames=true
ck=$(train gap0 configs/cvrl_fmnist.cfg --set pipelines.[0].structure.gap=zero)
probe gap0 class "$ck"
probe gap0 direction "$ck"
ck=$(train uniform configs/cvrl_fmnist.cfg --set pipelines.[0].structure.gap=uniform)
probe uniform class "$ck"
probe uniform direction "$ck"
[ "${LEVERS:-0}" = 1 ] || exit 0
sk3="--set encoder.spatial_kernel=3"
ck=$(train sk3 configs/cvrl_fmnist.cfg $sk3)
probe sk3 class "$ck" $sk3
probe sk3 direction "$ck" $sk3
runs8="--set pipelines.[0].data=train_item --set pipelines.[0].label_runs=8"
ck=$(train runs8 configs/cvrl_fmnist.cfg $runs8)
probe runs8 class "$ck"
probe runs8 direction "$ck"
