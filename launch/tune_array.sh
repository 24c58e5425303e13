#!/usr/bin/env bash
#SBATCH --job-name=isx-tune
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%x-%A_%a.out
# isx.tune workers as a SLURM array: each array task is one worker on the study storage that
# they share (isx.tune's --storage; by default SQLite in OUT, which must be on a shared
# filesystem). A task's worker index is its array index, from which it derives its sampler's
# seed; the workers take trials until each method's study holds its budget. A cancelled task
# leaves its trial failed, and its retry resumes the trial's checkpoint: submit again to finish.
#
#   bash launch/tune_array.sh submit [TUNE FLAGS...]   # sbatch an array of WORKERS tasks
#   sbatch --array=0-3 launch/tune_array.sh [TUNE FLAGS...]   # the same with the lines above
#
# Settings (environment variables):
#   WORKERS=4  CPUS_PER_TASK=4  TIME_LIMIT=24:00:00  JOB_NAME=isx-tune  PARTITION=  ACCOUNT=
#   CONFIG  default configs/fashion_mnist_open_set.py
#   SPACE   default results/spaces/fashion_mnist_open_set.json
#   OUT     default <repo>/workdirs/tune_<space name> (shared by every task)
#   VENV    default <repo>/.venv (bash launch/gpu_slurm.sh install makes one)
#   LOG_DIR default <repo>/workdirs/slurm_logs (one log per array task)
#   DRY_RUN=1  print the commands instead of running them
# TUNE FLAGS (e.g. --config.dataset.data_dir=DATA --methods=softmax,softmax_is) go to isx.tune.
set -euo pipefail

# sbatch runs a spooled copy of this script, so fall back to the submit directory.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $HERE/../setup.cfg && -d $HERE/../isx ]]; then ROOT=$(cd "$HERE/.." && pwd); else ROOT=$PWD; fi
# shellcheck source=launch/lib.sh
source "$ROOT/launch/lib.sh"
cd "$ROOT"

DRY_RUN=${DRY_RUN:-0}
CMD=run
if [[ ${1:-} == submit ]]; then CMD=submit; shift; elif [[ ${1:-} == run ]]; then shift; fi
WORKERS=${WORKERS:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-4}
TIME_LIMIT=${TIME_LIMIT:-24:00:00}
JOB_NAME=${JOB_NAME:-isx-tune}
CONFIG=${CONFIG:-configs/fashion_mnist_open_set.py}
SPACE=${SPACE:-results/spaces/fashion_mnist_open_set.json}
OUT=${OUT:-$ROOT/workdirs/tune_$(basename "$SPACE" .json)}
VENV=${VENV:-$ROOT/.venv}
LOG_DIR=${LOG_DIR:-$ROOT/workdirs/slurm_logs}

if [[ $CMD == submit ]]; then
  opts=(--job-name="$JOB_NAME" --array="0-$((WORKERS - 1))" --ntasks=1
        --cpus-per-task="$CPUS_PER_TASK" --time="$TIME_LIMIT" --chdir="$ROOT"
        --output="$LOG_DIR/%x-%A_%a.out")
  [[ -n ${PARTITION:-} ]] && opts+=(--partition="$PARTITION")
  [[ -n ${ACCOUNT:-} ]] && opts+=(--account="$ACCOUNT")
  run_cmd mkdir -p "$LOG_DIR"
  run_cmd sbatch "${opts[@]}" "$ROOT/launch/tune_array.sh" run "$@"
  exit 0
fi
if [[ $DRY_RUN != 1 && -z ${SLURM_ARRAY_TASK_ID:-} ]]; then
  echo "tune_array.sh: run needs a SLURM array task (use submit, or sbatch --array)" >&2; exit 1
fi
# exec: the worker itself gets scancel's SIGTERM, saves its trial's checkpoint and marks it
# failed for a retry. isx.tune reads its worker index from the SLURM array variables.
export PYTHONUNBUFFERED=1
run_cmd exec "$VENV/bin/python" -m isx.tune --config="$CONFIG" \
  --space="$SPACE" --out="$OUT" "$@"
