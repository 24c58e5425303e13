#!/usr/bin/env bash
#SBATCH --job-name=isx
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gres=gpu:8
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%x-%j.out
# Multi-node GPU training of isx under SLURM, one process per GPU (or, with GPUS_PER_NODE=0,
# CPU-only: TASKS_PER_NODE processes per node).
#
#   bash launch/gpu_slurm.sh install              # once, on the login node
#   bash launch/gpu_slurm.sh submit [FLAGS...]    # sbatch this script with NODES/GPUS_PER_NODE
#   sbatch launch/gpu_slurm.sh [run] [FLAGS...]   # same, using the #SBATCH lines above
#   bash launch/gpu_slurm.sh run [FLAGS...]       # inside an salloc allocation
#
# GPUs are requested per node (--gres), never per task: jax.distributed.initialize()
# auto-detects SLURM and makes local task i drive visible GPU i, so every task on a
# node must see all of that node's GPUs (--gpus-per-task=1 would hide them).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/gpu_slurm.sh [--dry_run] COMMAND [FLAGS...]

Commands:
  install          create the venv (VENV) with requirements + jax[JAX_CUDA]
  submit [FLAGS]   sbatch this script for NODES x TASKS_PER_NODE processes
  run [FLAGS]      inside an allocation: srun isx.main, one process per task
                   (the default when started by sbatch without a command)
FLAGS (e.g. --config.model.inward_scale=False) are passed on to isx.main.

Settings (environment variables):
  NODES=2  GPUS_PER_NODE=8  TIME_LIMIT=24:00:00  JOB_NAME=isx  PARTITION=  ACCOUNT=
  TASKS_PER_NODE default GPUS_PER_NODE (one process per GPU)
  GPUS_PER_NODE=0 a CPU cluster: no --gres, JAX_PLATFORMS=cpu, TASKS_PER_NODE default 1,
                 install takes plain jax
  CONFIG         default configs/cifar100_googlenet.py
  RUN_NAME       default: the config file's base name
  WORKDIR        default <repo>/workdirs/$RUN_NAME (must be on a shared filesystem)
  TFDS_DATA_DIR  shared TFDS directory (default: TFDS's own default)
  VENV           default <repo>/.venv;  PYTHON (to create it) default python3 (>= 3.11)
  JAX_CUDA       jax extra for install: cuda12 (default) or cuda13 (newer drivers)
  JAX_VERSION    default: the jax== pin in requirements.txt
  LOG_DIR        default <repo>/workdirs/slurm_logs (one log per process)
  DRY_RUN=1      print the commands (shell-quoted, one per line) instead of running them
EOF
}

die_usage() { echo "gpu_slurm.sh: $*" >&2; usage >&2; exit 2; }

# sbatch runs a spooled copy of this script, so fall back to the submit directory.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $HERE/../setup.cfg && -d $HERE/../isx ]]; then ROOT=$(cd "$HERE/.." && pwd); else ROOT=$PWD; fi
# shellcheck source=launch/lib.sh
source "$ROOT/launch/lib.sh"
cd "$ROOT"

DRY_RUN=${DRY_RUN:-0}
CMD=""
EXTRA=()
for arg in "$@"; do
  case $arg in
    --dry_run|--dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) if [[ -z $CMD ]]; then CMD=$arg; else EXTRA+=("$arg"); fi ;;
  esac
done
# Started by sbatch with only isx flags (or none): the command is `run`.
if [[ -n ${SLURM_JOB_ID:-} && ( -z $CMD || $CMD == --* ) ]]; then
  [[ -n $CMD ]] && EXTRA=("$CMD" ${EXTRA[@]+"${EXTRA[@]}"})
  CMD=run
fi

NODES=${NODES:-2}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
if [[ $GPUS_PER_NODE == 0 ]]; then TASKS_PER_NODE=${TASKS_PER_NODE:-1}; else TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS_PER_NODE}; fi
TIME_LIMIT=${TIME_LIMIT:-24:00:00}
JOB_NAME=${JOB_NAME:-isx}
PARTITION=${PARTITION:-}
ACCOUNT=${ACCOUNT:-}
CONFIG=${CONFIG:-configs/cifar100_googlenet.py}
RUN_NAME=${RUN_NAME:-$(basename "$CONFIG" .py)}
WORKDIR=${WORKDIR:-$ROOT/workdirs/$RUN_NAME}
TFDS_DATA_DIR=${TFDS_DATA_DIR:-}
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
JAX_CUDA=${JAX_CUDA:-cuda12}
JAX_VERSION=${JAX_VERSION:-$(sed -n 's/^jax==\([^ ;]*\).*/\1/p' "$ROOT/requirements.txt" 2>/dev/null)}
LOG_DIR=${LOG_DIR:-$ROOT/workdirs/slurm_logs}

cmd_install() {
  [[ -n $JAX_VERSION ]] || { echo "gpu_slurm.sh: cannot read jax== from requirements.txt; set JAX_VERSION" >&2; exit 1; }
  run_cmd "$PYTHON" -m venv "$VENV"
  local jax="jax[$JAX_CUDA]==$JAX_VERSION"
  [[ $GPUS_PER_NODE == 0 ]] && jax="jax==$JAX_VERSION"
  run_cmd "$VENV/bin/pip" install -r "$ROOT/requirements.txt" "$jax" -e "$ROOT"
}

cmd_submit() {
  # --gres=none overrides the header's GPU request on a CPU cluster.
  local gres=gpu:$GPUS_PER_NODE
  [[ $GPUS_PER_NODE == 0 ]] && gres=none
  local opts=(--job-name="$JOB_NAME" --nodes="$NODES" --ntasks-per-node="$TASKS_PER_NODE"
              --gres="$gres" --time="$TIME_LIMIT" --chdir="$ROOT"
              --output="$LOG_DIR/%x-%j.out")
  [[ -n $PARTITION ]] && opts+=(--partition="$PARTITION")
  [[ -n $ACCOUNT ]] && opts+=(--account="$ACCOUNT")
  run_cmd mkdir -p "$LOG_DIR"
  # Command-line options override the #SBATCH lines; the job then runs `run` below.
  run_cmd sbatch "${opts[@]}" "$ROOT/launch/gpu_slurm.sh" run ${EXTRA[@]+"${EXTRA[@]}"}
}

cmd_run() {
  if [[ $DRY_RUN != 1 && -z ${SLURM_JOB_ID:-} ]]; then
    echo "gpu_slurm.sh: run needs a SLURM allocation (use submit, sbatch or salloc)" >&2; exit 1
  fi
  local env_vars=(PYTHONUNBUFFERED=1) bind=(--gpu-bind=none)
  [[ -n $TFDS_DATA_DIR ]] && env_vars+=(TFDS_DATA_DIR="$TFDS_DATA_DIR")
  if [[ $GPUS_PER_NODE == 0 ]]; then env_vars+=(JAX_PLATFORMS=cpu); bind=(); fi
  run_cmd mkdir -p "$LOG_DIR"
  # srun takes the task layout from the allocation. --kill-on-bad-exit stops the other
  # processes if one dies (they would hang in collectives); %t gives one log per process.
  run_cmd srun --kill-on-bad-exit=1 ${bind[@]+"${bind[@]}"} --output="$LOG_DIR/isx-%j-%t.log" \
    env "${env_vars[@]}" "$VENV/bin/python" -m isx.main \
    --config="$CONFIG" --workdir="$WORKDIR" --jax_distributed ${EXTRA[@]+"${EXTRA[@]}"}
}

case $CMD in
  install|submit|run)
    if [[ $CMD == install && ${#EXTRA[@]} -gt 0 ]]; then die_usage "unexpected arguments for install: ${EXTRA[*]}"; fi
    "cmd_$CMD" ;;
  "") die_usage "missing command" ;;
  *) die_usage "unknown command: $CMD" ;;
esac
