#!/usr/bin/env bash
# Runs bevt's benches and the official code (bench/official/pretrain_step.py) back to back on this machine and
# prints every ratio that issue 17 sets a goal for, from this one run (docs/benchmarks.md). About 5-8 minutes on
# an idle 2-core machine.
#
#   bench/compare_official.sh --bevt-repo BEVT --swin-repo Video-Swin-Transformer --dalle-repo DALL-E [--build build]
#                             [--threads 2] [--rounds 3] [--quick]
#
# The Video Swin cases take 0.1-0.4 s, and this VM's speed drifts by up to 20% within minutes, so they run in
# --rounds alternating rounds (bevt, official, bevt, official, ...) and each round gives its own ratio; the table
# prints the median ratio and the range.
#
# The official checkouts are the user's (github.com/xyzforever/BEVT, SwinTransformer/Video-Swin-Transformer,
# openai/DALL-E); their Python runs in the torch venv (scripts/torch_env.sh), the same torch build bevt links.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build"
bevt_repo="" swin_repo="" dalle_repo=""
threads=2
rounds=3
warm=1 reps=2 swarm=2 sreps=5  # --quick: no warm-up, one timed run per case (a smoke test, not figures)
while [ $# -gt 0 ]; do
  case "$1" in
    --bevt-repo) bevt_repo=$2; shift 2 ;;
    --swin-repo) swin_repo=$2; shift 2 ;;
    --dalle-repo) dalle_repo=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --quick) warm=0 reps=1 swarm=0 sreps=1 rounds=1; shift ;;
    *) echo "compare_official.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ -z "$bevt_repo" ] || [ -z "$swin_repo" ] || [ -z "$dalle_repo" ]; then
  echo "compare_official.sh: --bevt-repo, --swin-repo and --dalle-repo (the official checkouts) are required" >&2
  exit 2
fi
for b in bench_pretrain_step bench_video_swin bench_dalle; do
  if [ ! -x "$build/bin/$b" ]; then
    echo "compare_official.sh: $build/bin/$b is missing; build it: ninja -C $build $b" >&2
    exit 2
  fi
done
py="${BEVT_VENV:-$HOME/.cache/bevt/venv-torch-2.11.0}/bin/python"
[ -x "$py" ] || { echo "compare_official.sh: no torch venv at $py (scripts/setup.sh makes it; or set BEVT_VENV)" >&2; exit 2; }

out=$(mktemp -d)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(uname -n); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nproc) cores"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); torch $("$py" -c 'import torch; print(torch.__version__)'); $threads threads"

echo "## bevt" >&2
"$build/bin/bench_pretrain_step" --json --warmup "$warm" --reps "$reps" --threads "$threads" | tee "$out/bevt.jsonl"
"$build/bin/bench_dalle" --json --batch 10 --size 112 --warmup "$warm" --reps "$((reps + 1))" --threads "$threads" | tee -a "$out/bevt.jsonl"
official() {
  "$py" -W ignore "$here/official/pretrain_step.py" --bevt-repo "$bevt_repo" --swin-repo "$swin_repo" \
    --dalle-repo "$dalle_repo" --threads "$threads" --warmup "$warm" --reps "$reps" \
    --swin-warmup "$swarm" --swin-reps "$sreps" "$@"
}
echo "## official" >&2
official --cases sgemm,dalle,pretrain | tee "$out/official.jsonl"
for r in $(seq "$rounds"); do
  echo "## Video Swin, round $r of $rounds: bevt, then official" >&2
  "$build/bin/bench_video_swin" --json --warmup "$swarm" --reps "$sreps" --threads "$threads" | tee -a "$out/bevt.jsonl"
  official --cases swin_train,swin_eval,swin_train_ckpt | tee -a "$out/official.jsonl"
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" "$here/official/ratios.py" "$out/bevt.jsonl" "$out/official.jsonl"
