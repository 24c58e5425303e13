#!/usr/bin/env bash
# Run isx.main as NUM_PROCESSES CPU processes on this machine, wired together with an
# explicit coordinator on 127.0.0.1: exercises the multi-host code paths (distributed
# init, per-process data sharding, collective checkpointing) without a pod or cluster.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/local_multiprocess.sh [--dry_run] run [FLAGS...]

  run [FLAGS]   start the processes, wait for all, exit non-zero if any failed.
                FLAGS (e.g. --config.model.inward_scale=False) are passed on to isx.main.

Settings (environment variables):
  NUM_PROCESSES        default 2
  DEVICES_PER_PROCESS  simulated CPU devices per process, default 2
  PORT                 coordinator port on 127.0.0.1, default 47123
  CONFIG               default configs/cifar100_googlenet.py
  RUN_NAME             default: the config file's base name
  WORKDIR              default <repo>/workdirs/local_mp/$RUN_NAME
  LOG_DIR              default <repo>/workdirs/local_mp/logs (process i -> process_i.log)
  PYTHON               default <repo>/.venv/bin/python if present, else python3
  MODULE               default isx.main
  DRY_RUN=1            print the commands (shell-quoted, one per line) instead of running them
EOF
}

die_usage() { echo "local_multiprocess.sh: $*" >&2; usage >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=launch/lib.sh
source "$ROOT/launch/lib.sh"
cd "$ROOT"  # so `python -m isx.main` and relative config paths resolve

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
case $CMD in
  run) ;;
  "") die_usage "missing command" ;;
  *) die_usage "unknown command: $CMD" ;;
esac

NUM_PROCESSES=${NUM_PROCESSES:-2}
DEVICES_PER_PROCESS=${DEVICES_PER_PROCESS:-2}
PORT=${PORT:-47123}
CONFIG=${CONFIG:-configs/cifar100_googlenet.py}
RUN_NAME=${RUN_NAME:-$(basename "$CONFIG" .py)}
WORKDIR=${WORKDIR:-$ROOT/workdirs/local_mp/$RUN_NAME}
LOG_DIR=${LOG_DIR:-$ROOT/workdirs/local_mp/logs}
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
MODULE=${MODULE:-isx.main}

if [[ $DRY_RUN == 1 ]]; then q mkdir -p "$LOG_DIR"; else mkdir -p "$LOG_DIR"; fi

pids=()
# On Ctrl-C or an early exit, end the processes this script started (by pid).
cleanup() { for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done; }
trap cleanup INT TERM

for ((i = 0; i < NUM_PROCESSES; i++)); do
  # JAX_PLATFORMS=cpu keeps each process off any local GPU; XLA_FLAGS gives each process
  # several CPU devices so that in-process sharding is exercised too.
  cmd=(env JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count="$DEVICES_PER_PROCESS"
       PYTHONUNBUFFERED=1 "$PYTHON" -m "$MODULE" --config="$CONFIG" --workdir="$WORKDIR"
       --coordinator_address=127.0.0.1:"$PORT" --num_processes="$NUM_PROCESSES" --process_id="$i"
       ${EXTRA[@]+"${EXTRA[@]}"})
  log=$LOG_DIR/process_$i.log
  if [[ $DRY_RUN == 1 ]]; then
    echo "$(q "${cmd[@]}") > $(q "$log") 2>&1 &"
  else
    "${cmd[@]}" > "$log" 2>&1 &
    pids+=($!)
    echo "process $i: pid $!, log $log" >&2
  fi
done
[[ $DRY_RUN == 1 ]] && { echo wait; exit 0; }

failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    failed=1
    echo "local_multiprocess.sh: process $i failed; last lines of $LOG_DIR/process_$i.log:" >&2
    tail -n 20 "$LOG_DIR/process_$i.log" >&2
    cleanup  # the others would otherwise block in collectives until timeout
  fi
done
exit "$failed"
