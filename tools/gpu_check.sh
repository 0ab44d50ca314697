#!/usr/bin/env bash
# GPU check of the reid workspace: the backbone and loss parity tests on the
# GPU backend, and the training benchmark (`benches/train.rs`) against
# PyTorch on CUDA, with a Markdown report. See docs/gpu.md.
#
#   tools/gpu_check.sh [--backend cuda|wgpu] [--out DIR]
#       build here (offline: the crates must be in the cargo cache or
#       vendored, see docs/gpu.md), then run everything on the GPU;
#   tools/gpu_check.sh --bundle DIR [--backend cuda|wgpu]
#       on a machine with the crates (no GPU needed): build the test and
#       bench binaries for the backend and copy them, stripped and
#       compressed, into DIR, for a GPU machine without a Rust toolchain;
#   tools/gpu_check.sh --prebuilt DIR [--out DIR]
#       on the GPU machine: run the binaries of such a bundle;
#   tools/gpu_check.sh --dry-run [--out DIR]
#       the same steps on the CPU (`flex`, PyTorch on the CPU if available,
#       the bench at toy sizes without its batch-64 rows, two parity
#       binaries), through a bundle, in the dev profile CI has already
#       built: what .ci/run runs.
#
# Environment: REID_PYTHON (the PyTorch interpreter; default: the repo's
# .venv, else python3), GPU_CHECK_ROWS (bench rows; default all),
# GPU_CHECK_RUNS (timed steps per row; default 3), CARGO_TARGET_DIR.
# Exit status: 0 when every step passed, 1 otherwise (the report says which).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

backend=cuda
out=""
mode=build
bundle=""
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bundle) mode=bundle; bundle=$2; shift 2 ;;
    --prebuilt) mode=prebuilt; bundle=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$backend" in cuda|wgpu) ;; *) echo "--backend must be cuda or wgpu" >&2; exit 2 ;; esac

if [ "$dry" = 1 ]; then
  backend=flex
  torch_device=cpu
  profile=dev
  # Toy sizes, and no batch-64 rows (the batch-16 rows run the same code).
  bench_args=(--tiny --quick)
  # PyTorch's OpenMP threads with OMP_WAIT_POLICY unset were 70x slower on
  # an oversubscribed 2-core machine (benches/train.rs).
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
  [ -n "$bundle" ] || bundle=${CARGO_TARGET_DIR:-$ROOT/target}/gpu-check-dry-bundle
  [ -n "$out" ] || out=${CARGO_TARGET_DIR:-$ROOT/target}/gpu-check-dry
else
  torch_device=cuda
  profile=release
  bench_args=()
  [ -n "$out" ] || out=$ROOT/target/gpu-check
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
report=$out/report.md
status=0

# The parity tests run on the GPU: every backbone family and every loss
# (the dry run: the ResNet family and the ReID losses only, which CI has
# already run in full on flex). Each entry is <package>:<module> of that
# package's one integration-test binary (`tests/integration/<module>.rs`).
parity_tests=(reid-backbones:parity reid-backbones:parity_vit reid-backbones:parity_swin
  reid-backbones:parity_volo reid-backbones:parity_convnext reid-backbones:parity_edgenext
  reid-backbones:parity_fastvit reid-backbones:parity_ghostnet reid-backbones:parity_repvit
  reid-backbones:parity_cion_zoo reid-losses:parity reid-losses:parity_cion
  reid-losses:parity_pretrain)
[ "$dry" = 1 ] && parity_tests=(reid-backbones:parity reid-losses:parity)
# GPU_CHECK_TESTS=pkg:module,... picks others (a CUDA binary carries LLVM: see
# docs/gpu.md for the sizes).
[ -n "${GPU_CHECK_TESTS:-}" ] && IFS=, read -ra parity_tests <<< "$GPU_CHECK_TESTS"

log() { printf '%s\n' "$*" | tee -a "$report"; }
section() { printf '\n## %s\n\n' "$1" >> "$report"; printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

# ---------------------------------------------------------------- building

features_for() {
  case "$1" in
    flex) echo "" ;;
    *) echo "burn/$1" ;;
  esac
}

# Builds the parity test binaries and the train bench for $backend and copies
# them into $bundle with a manifest.
make_bundle() {
  local dest=$1
  local feature
  feature=$(features_for "$backend")
  mkdir -p "$dest"
  local tests=(--test integration) t
  local json=$dest/cargo-messages.json
  if [ "$profile" = dev ]; then
    # What CI's `cargo test --workspace` has built: the same features, the
    # same artifacts, so nothing is recompiled.
    # (On failure, the same command again for the compiler's readable errors.)
    cargo test --workspace --no-run --message-format=json "${tests[@]}" --bench train > "$json" ||
      { cargo test --workspace --no-run "${tests[@]}" --bench train; return 1; }
  else
    # The GPU feature goes to burn (a dependency of every package built);
    # `reid`'s own feature flag selects the backend of `reid::Backend`.
    local reid_feature=""
    [ -n "$feature" ] && reid_feature="--features reid/$backend"
    # shellcheck disable=SC2086
    cargo test --release --workspace --no-run --message-format=json $reid_feature "${tests[@]}" --bench train > "$json" ||
      { cargo test --release --workspace --no-run $reid_feature "${tests[@]}" --bench train; return 1; }
  fi
  local line exe name manifest pkg stage=$dest/stage
  local wanted=(reid.train)
  for t in "${parity_tests[@]}"; do wanted+=("${t%%:*}.integration"); done
  rm -rf "$stage" "$dest/bundle.tar.xz"
  mkdir -p "$stage"
  : > "$dest/manifest"
  # One JSON message per built target: keep those with an executable, named
  # <package>.<target> (every package's test binary is named `integration`).
  while read -r line; do
    exe=$(printf '%s' "$line" | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
    [ -n "$exe" ] || continue
    manifest=$(printf '%s' "$line" | grep -o '"manifest_path":"[^"]*"' | cut -d'"' -f4)
    pkg=$(basename "$(dirname "$manifest")")
    [ "$(dirname "$manifest")" = "$ROOT" ] && pkg=reid
    name=$(basename "$exe")
    name=$pkg.${name%-*}
    # Only what was asked for: `--workspace` also builds the binaries the
    # tests run and the integration tests of the other packages.
    case " ${wanted[*]} " in *" $name "*) ;; *) continue ;; esac
    cp "$exe" "$stage/$name"
    strip "$stage/$name" 2>/dev/null || true
    echo "$name" >> "$dest/manifest"
  done < <(grep '"executable":"' "$json")
  # One solid archive with a large window: the binaries share most of their
  # code (burn, and LLVM for cuda), which it stores once.
  # The dry run compresses fast (level 0): it checks the path, not the size.
  local xz_opts=(-T1 --lzma2=preset=6,dict=256MiB)
  [ "$dry" = 1 ] && xz_opts=(-T1 -0)
  tar -C "$stage" -cf - . | xz "${xz_opts[@]}" > "$dest/bundle.tar.xz" || return 1
  rm -rf "$stage"
  {
    echo "root=$ROOT"
    echo "backend=$backend"
    echo "profile=$profile"
    echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "built=$(date -u +%FT%TZ) on $(uname -m)"
  } > "$dest/build-info"
  rm -f "$json"
  echo "bundle $dest: $(tr '\n' ' ' < "$dest/manifest")($(du -sh "$dest" | cut -f1))"
}

# Unpacks a bundle into $out/bin; the binaries find the repository's files
# (fixtures, tools/) under the path they were built in, which is linked to
# this checkout when it differs.
unpack_bundle() {
  local src=$1
  [ -f "$src/manifest" ] || { echo "$src has no manifest: not a bundle" >&2; return 1; }
  rm -rf "$out/bin"
  mkdir -p "$out/bin"
  xz -dc "$src/bundle.tar.xz" | tar -C "$out/bin" -xf - || return 1
  local built_root
  built_root=$(sed -n 's/^root=//p' "$src/build-info")
  backend=$(sed -n 's/^backend=//p' "$src/build-info")
  if [ -n "$built_root" ] && [ "$built_root" != "$ROOT" ] && [ ! -e "$built_root" ]; then
    mkdir -p "$(dirname "$built_root")" && ln -s "$ROOT" "$built_root" || {
      echo "cannot link $built_root to $ROOT (the tests read their fixtures there)" >&2
      return 1
    }
  fi
}

# ---------------------------------------------------------------- running

run_step() {
  # run_step NAME LOGFILE COMMAND...: runs, times, records the result.
  local name=$1 logf=$2; shift 2
  local t0 rc
  t0=$(date +%s)
  "$@" > "$logf" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local summary
  summary=$(grep -E '^test result:' "$logf" | tail -1)
  [ -n "$summary" ] || summary=$(tail -1 "$logf")
  if [ $rc -eq 0 ]; then
    log "- **$name**: passed in ${dt} s — ${summary}"
  else
    log "- **$name**: FAILED (exit $rc) in ${dt} s — ${summary} (log: $(basename "$logf"))"
    status=1
  fi
}

{
  echo "# GPU check report"
  echo
  echo "- date: $(date -u +%FT%TZ)"
  echo "- host: $(uname -srm), $(nproc) CPUs"
  echo "- mode: $mode$([ "$dry" = 1 ] && echo ', dry run (CPU, toy sizes)')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$report"

section "Device"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/- GPU: /' >> "$report"
  # cudarc loads the driver at run time; the CUDA version it was built for
  # should not be newer than the driver's (docs/gpu.md).
  nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1 | sed 's/^/- driver /' >> "$report"
else
  log "- no nvidia-smi on this machine"
fi
if [ "$dry" = 0 ] && [ "$backend" = wgpu ] && [ -d .gl ] && [ "$(id -u)" = 0 ]; then
  # Vulkan/EGL loaders carried as Debian packages (docs/gpu.md).
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -z "${REID_PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then REID_PYTHON=$ROOT/.venv/bin/python; else REID_PYTHON=python3; fi
fi
export REID_PYTHON
log "- PyTorch: $("$REID_PYTHON" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "no cuda")' 2>&1 | tail -1)"

section "Build"
case "$mode" in
  bundle)
    run_step "bundle ($backend, $profile)" "$out/build.log" make_bundle "$bundle"
    cat "$report"; exit $status ;;
  build)
    if [ "$dry" = 1 ]; then
      run_step "build + bundle ($backend, $profile)" "$out/build.log" make_bundle "$bundle"
    else
      export CARGO_NET_OFFLINE=true
      run_step "build ($backend, $profile, offline)" "$out/build.log" make_bundle "$out/bundle"
      bundle=$out/bundle
    fi ;;
  prebuilt) log "- prebuilt bundle $bundle: $(tr '\n' ' ' < "$bundle/build-info" 2>/dev/null)" ;;
esac
if [ $status -ne 0 ]; then
  log "- build failed: nothing to run"
  tail -20 "$out/build.log"
  exit 1
fi
unpack_bundle "$bundle" || { log "- cannot unpack $bundle"; exit 1; }

section "Parity tests ($backend)"
for t in "${parity_tests[@]}"; do
  name=${t#*:}
  exe=$out/bin/${t%%:*}.integration
  [ -x "$exe" ] || { log "- **${t}**: no binary in the bundle"; status=1; continue; }
  # The module's tests only: test names start with `<module>::`.
  run_step "$t" "$out/test-${t%%:*}-$name.log" \
    env REID_TEST_BACKEND="$backend" BURN_DEVICE="$backend" "$exe" "$name::" --test-threads=1
done

section "Training benchmark ($backend vs PyTorch on $torch_device)"
bench=$out/bin/reid.train
if [ -x "$bench" ]; then
  rows_env=()
  [ -n "${GPU_CHECK_ROWS:-}" ] && rows_env=(BENCH_ROWS="$GPU_CHECK_ROWS")
  run_step "train bench" "$out/bench.log" env "${rows_env[@]}" \
    BENCH_BACKEND="$backend" BENCH_TORCH_DEVICE="$torch_device" BENCH_JSON="$out/bench.json" \
    BENCH_RUNS="${GPU_CHECK_RUNS:-$([ "$dry" = 1 ] && echo 1 || echo 3)}" \
    "$bench" "${bench_args[@]}"
  echo >> "$report"
  sed -n '/^Training steps/,$p' "$out/bench.log" >> "$report"
else
  log "- no bench binary in the bundle"
  status=1
fi

printf '\nreport: %s\n' "$report"
cat "$report"
exit $status
