#!/usr/bin/env bash
# valgrind memcheck on a 3-step SimCLR training of the portable build (issue
# 16), once at each kernel level valgrind runs: avx2 and generic (valgrind
# 3.19 has no AVX-512 and hides it from cpuid, so the portable build's
# automatic choice under it is avx2; CT_SIMD makes the level explicit).
# Any memory error or leak (definite, indirect or possible) fails. Also checks
# that a level the (virtual) processor lacks is refused with a clear error,
# and that test_simd passes there (leaving that level out), memcheck clean.
#
#   tests/valgrind_train.sh BUILD_DIR SOURCE_DIR
# Registered in ctest as valgrind_train (label valgrind); exits 77 (skipped)
# when valgrind is not installed (scripts/setup installs it).
set -euo pipefail

build="${1:?usage: valgrind_train.sh BUILD_DIR SOURCE_DIR}"
src="${2:?usage: valgrind_train.sh BUILD_DIR SOURCE_DIR}"
if ! command -v valgrind >/dev/null; then
  echo "valgrind_train: valgrind is not installed (apt-get install valgrind); skipped"
  exit 77
fi
export CONTRAST_PLUGIN_PATH="${CONTRAST_PLUGIN_PATH:-$build/plugins}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ct-valgrind.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --child-silent-after-fork: the plugin loader probes each plugin in a
# forked child that _exit()s on purpose while holding the parent's memory
# (host/plugins/loader.c); the parent then loads the same plugin and runs its
# init itself, under memcheck, so nothing is left unchecked.
vg=(valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
  --errors-for-leak-kinds=definite,indirect,possible --child-silent-after-fork=yes)

# Tiny: 64 images, batch 8, a 4/8/16-wide encoder, no evaluation; 2 threads
# so the pool's workers run under memcheck too.
sets=(--set data.train.limit=64 --set data.test.limit=64 --set train.batch_size=8 --set train.threads=2
  --set train.max_steps=3 --set train.epochs=1 --set train.log_every=1 --set train.keep=1
  --set encoder.stem_width=4 --set 'encoder.widths=[4,8,16]' --set evaluation.every=0
  --set 'evaluation.evaluators=()')

fail=0
for level in avx2 generic; do
  log="$work/$level.log"
  if ! CT_SIMD=$level "${vg[@]}" "$build/contrast" train "$src/configs/simclr_fmnist.cfg" "${sets[@]}" \
    --run-dir "$work/run-$level" >"$log" 2>&1; then
    echo "valgrind_train: CT_SIMD=$level: valgrind or the training failed:"
    cat "$log"
    fail=1
    continue
  fi
  # Leaks of the three kinds count as errors (--errors-for-leak-kinds);
  # "still reachable" blocks (libraries' own caches at exit) do not.
  if ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
    echo "valgrind_train: CT_SIMD=$level: memcheck found errors or leaks:"
    cat "$log"
    fail=1
    continue
  fi
  if ! grep -q "$level kernels" "$log" || ! ls "$work/run-$level"/checkpoint-s00000003.safetensors >/dev/null; then
    echo "valgrind_train: CT_SIMD=$level: no '$level kernels' in the run line or no step-3 checkpoint:"
    cat "$log"
    fail=1
    continue
  fi
  echo "valgrind_train: CT_SIMD=$level: 3 steps clean ($(grep -m1 '^run ' "$log"))"
done

# The processor valgrind presents lacks AVX-512: CT_SIMD=avx512 must be
# refused naming what is available, not die of SIGILL.
if ! valgrind -q "$build/contrast" version | grep -q "processor runs: [^;]*avx512"; then
  out="$(CT_SIMD=avx512 valgrind -q "$build/contrast" version 2>&1)" && rc=0 || rc=$?
  if [[ $rc -ne 1 ]] || ! grep -q "CT_SIMD='avx512'.*available: generic, avx2" <<<"$out"; then
    echo "valgrind_train: CT_SIMD=avx512 under valgrind: want exit 1 and a refusal, got $rc: $out"
    fail=1
  else
    echo "valgrind_train: CT_SIMD=avx512 refused under valgrind: $out"
  fi
  # test_simd on a processor without AVX-512: it compares avx2 with
  # generic and leaves avx512 out (not fails), memcheck clean.
  log="$work/test_simd.log"
  if ! CK_FORK=no "${vg[@]}" "$build/tests/test_simd" >"$log" 2>&1 ||
    ! grep -q "the processor lacks the avx512 kernels" "$log" || ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
    echo "valgrind_train: test_simd under valgrind (no AVX-512) failed:"
    cat "$log"
    fail=1
  else
    echo "valgrind_train: test_simd without AVX-512: $(grep -m1 '^levels: ' "$log"), $(grep -m1 'Checks: ' "$log")"
  fi
fi
exit $fail
