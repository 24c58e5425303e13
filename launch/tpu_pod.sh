#!/usr/bin/env bash
# Train isx on a Cloud TPU VM pod slice: create, copy, install, run, logs, delete.
# See launch/README.md for the end-to-end walk-through.

# Paths on the workers stay literal ~/... on purpose: the worker's shell expands them.
# shellcheck disable=SC2088
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/tpu_pod.sh [--dry_run] [--KEY=VALUE ...] COMMAND [ARGS...]

Commands:
  create            create the TPU VM pod slice
  copy              copy the committed code (git archive HEAD) to every worker
  install           make a Python venv with requirements + jax[tpu] + gcsfs (gs:// I/O) on every worker
  run [FLAGS...]    start isx.main on every worker (detached, one log per host);
                    extra FLAGS (e.g. --config.model.inward_scale=False) are passed on
  tail              follow the log of one worker (WORKER, default 0)
  logs              fetch every worker's log into LOCAL_LOG_DIR/<worker>.log
  stop              stop the training process on every worker
  delete            delete the TPU VM pod slice

Settings (environment variable, or flag --lower_case_name=VALUE; flag wins):
  PROJECT          GCP project (default: gcloud's configured project)
  ZONE             default us-central2-b
  TPU_NAME         default isx-pod
  ACCELERATOR_TYPE default v4-32
  RUNTIME_VERSION  default tpu-ubuntu2204-base
  SPOT=1 | PREEMPTIBLE=1   create a spot / preemptible slice (or --spot, --preemptible)
  CREATE_FLAGS     more flags for create, space-separated (e.g. --service-account=...)
  BUCKET           GCS bucket name without gs:// (needed by run unless WORKDIR and
                   TFDS_DATA_DIR are both set)
  CONFIG           default configs/cifar100_googlenet.py
  RUN_NAME         default: the config file's base name
  WORKDIR          default gs://$BUCKET/isx/$RUN_NAME (same WORKDIR = resume)
  TFDS_DATA_DIR    default gs://$BUCKET/tensorflow_datasets
  PYTHON_VERSION   Python for the workers' venv, default 3.11
  JAX_VERSION      default: the jax== pin in requirements.txt
  GIT_REF          what copy ships, default HEAD
  WORKER           worker index for tail, default 0
  LOCAL_LOG_DIR    default workdirs/tpu_logs/$TPU_NAME (under the repo)
  DRY_RUN=1        print the commands (shell-quoted, one per line) instead of running them
EOF
}

die_usage() { echo "tpu_pod.sh: $*" >&2; usage >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=launch/lib.sh
source "$ROOT/launch/lib.sh"
DRY_RUN=${DRY_RUN:-0}
CMD=""
EXTRA=()
for arg in "$@"; do
  case $arg in
    --dry_run|--dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    --spot) SPOT=1 ;;
    --preemptible) PREEMPTIBLE=1 ;;
    --project=*|--zone=*|--tpu_name=*|--accelerator_type=*|--runtime_version=*|--bucket=*|\
    --config=*|--run_name=*|--workdir=*|--tfds_data_dir=*|--python_version=*|--jax_version=*|\
    --git_ref=*|--worker=*|--local_log_dir=*)
      key=$(printf '%s' "${arg%%=*}" | tr 'a-z-' 'A-Z_'); key=${key#__}
      printf -v "$key" '%s' "${arg#*=}" ;;
    *)
      if [[ -z $CMD ]]; then CMD=$arg; else EXTRA+=("$arg"); fi ;;
  esac
done

PROJECT=${PROJECT:-}
ZONE=${ZONE:-us-central2-b}
TPU_NAME=${TPU_NAME:-isx-pod}
ACCELERATOR_TYPE=${ACCELERATOR_TYPE:-v4-32}
RUNTIME_VERSION=${RUNTIME_VERSION:-tpu-ubuntu2204-base}
SPOT=${SPOT:-0}
PREEMPTIBLE=${PREEMPTIBLE:-0}
CREATE_FLAGS=${CREATE_FLAGS:-}
BUCKET=${BUCKET:-}
BUCKET=${BUCKET#gs://}
CONFIG=${CONFIG:-configs/cifar100_googlenet.py}
RUN_NAME=${RUN_NAME:-$(basename "$CONFIG" .py)}
WORKDIR=${WORKDIR:-${BUCKET:+gs://$BUCKET/isx/$RUN_NAME}}
TFDS_DATA_DIR=${TFDS_DATA_DIR:-${BUCKET:+gs://$BUCKET/tensorflow_datasets}}
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
JAX_VERSION=${JAX_VERSION:-$(sed -n 's/^jax==\([^ ;]*\).*/\1/p' "$ROOT/requirements.txt" 2>/dev/null)}
GIT_REF=${GIT_REF:-HEAD}
WORKER=${WORKER:-0}
LOCAL_LOG_DIR=${LOCAL_LOG_DIR:-$ROOT/workdirs/tpu_logs/$TPU_NAME}

# Paths on the workers, relative to the home directory where ssh starts. The venv
# lives outside the code directory so that `copy` can replace the code wholesale.
R_CODE='~/isx'
R_VENV='~/isx-venv'
R_LOGS='~/isx_logs'

GCLOUD=(gcloud compute tpus tpu-vm)
ZONE_ARGS=(--zone="$ZONE")
[[ -n $PROJECT ]] && ZONE_ARGS+=(--project="$PROJECT")

# Run a shell command on every worker at once.
on_all_workers() { run_cmd "${GCLOUD[@]}" ssh "$TPU_NAME" "${ZONE_ARGS[@]}" --worker=all --command "$1"; }

cmd_create() {
  local extra=()
  [[ $SPOT == 1 ]] && extra+=(--spot)
  [[ $PREEMPTIBLE == 1 ]] && extra+=(--preemptible)
  # shellcheck disable=SC2206  # split on spaces on purpose
  [[ -n $CREATE_FLAGS ]] && extra+=($CREATE_FLAGS)
  run_cmd "${GCLOUD[@]}" create "$TPU_NAME" "${ZONE_ARGS[@]}" \
    --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION" ${extra[@]+"${extra[@]}"}
}

cmd_copy() {
  # git archive ships exactly the committed tree: reproducible, no venvs or data.
  local rev tarball="${TMPDIR:-/tmp}/isx-$TPU_NAME.tar.gz"
  rev=$(git -C "$ROOT" rev-parse -q --verify "$GIT_REF^{commit}") || rev=$GIT_REF
  if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    echo "tpu_pod.sh: warning: uncommitted changes are NOT copied (shipping $GIT_REF)" >&2
  fi
  run_cmd git -C "$ROOT" archive --format=tar.gz -o "$tarball" "$GIT_REF"
  run_cmd "${GCLOUD[@]}" scp "$tarball" "$TPU_NAME:isx.tar.gz" "${ZONE_ARGS[@]}" --worker=all
  # Unpack beside the old copy, then swap, so a failed unpack leaves the old code intact.
  on_all_workers "set -e; rm -rf $R_CODE.new; mkdir $R_CODE.new; tar -xzf ~/isx.tar.gz -C $R_CODE.new; echo $(q "$rev") > $R_CODE.new/GIT_COMMIT; rm -rf $R_CODE; mv $R_CODE.new $R_CODE; echo \"\$(hostname): code at $(q "$rev")\""
}

cmd_install() {
  [[ -n $JAX_VERSION ]] || { echo "tpu_pod.sh: cannot read jax== from requirements.txt; set JAX_VERSION" >&2; exit 1; }
  # TPU VM images ship an older system Python than jax needs, so uv provides the interpreter.
  local uv='~/.local/bin/uv' py="$R_VENV/bin/python"
  on_all_workers "set -e; cd $R_CODE; [ -x $uv ] || curl -LsSf https://astral.sh/uv/install.sh | sh; [ -x $py ] || $uv venv --python $(q "$PYTHON_VERSION") $R_VENV; $uv pip install --python $py -r requirements.txt gcsfs \"jax[tpu]==$JAX_VERSION\" -e .; $py -c \"import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count())\""
}

cmd_run() {
  if [[ -z $WORKDIR || -z $TFDS_DATA_DIR ]]; then
    echo "tpu_pod.sh: set BUCKET (or both WORKDIR and TFDS_DATA_DIR)" >&2; exit 1
  fi
  [[ $WORKDIR == gs://* ]] || echo "tpu_pod.sh: warning: WORKDIR is not on GCS; every host must see the same checkpoints" >&2
  local train pidf="$R_LOGS/isx.pid" log="$R_LOGS/isx.log"
  train="$(q env PYTHONUNBUFFERED=1 TFDS_DATA_DIR="$TFDS_DATA_DIR") $R_VENV/bin/python -m isx.main $(q \
    --config="$CONFIG" --workdir="$WORKDIR" --jax_distributed ${EXTRA[@]+"${EXTRA[@]}"})"
  # Detached (nohup, all stdio redirected) so training outlives the ssh session; the pid
  # file lets `stop` end exactly this process and keeps a second launch off the busy TPU.
  on_all_workers "set -e; mkdir -p $R_LOGS; if [ -f $pidf ] && kill -0 \"\$(cat $pidf)\" 2>/dev/null; then echo \"\$(hostname): isx already running; use stop\" >&2; exit 1; fi; cd $R_CODE; echo \"=== \$(date -u) \$(hostname) \$(cat GIT_COMMIT 2>/dev/null)\" >> $log; nohup $train >> $log 2>&1 < /dev/null & echo \$! > $pidf; echo \"\$(hostname): started pid \$(cat $pidf), log $log\""
}

cmd_tail() {
  run_cmd "${GCLOUD[@]}" ssh "$TPU_NAME" "${ZONE_ARGS[@]}" --worker="$WORKER" --command "tail -n 100 -F $R_LOGS/isx.log"
}

cmd_logs() {
  # --output-directory writes one file per worker, named <worker index>.log.
  run_cmd mkdir -p "$LOCAL_LOG_DIR"
  run_cmd "${GCLOUD[@]}" ssh "$TPU_NAME" "${ZONE_ARGS[@]}" --worker=all \
    --command "cat $R_LOGS/isx.log" --output-directory="$LOCAL_LOG_DIR"
}

cmd_stop() {
  on_all_workers "if [ -f $R_LOGS/isx.pid ]; then kill \"\$(cat $R_LOGS/isx.pid)\" 2>/dev/null || true; rm -f $R_LOGS/isx.pid; fi; echo \"\$(hostname): stopped\""
}

cmd_delete() {
  run_cmd "${GCLOUD[@]}" delete "$TPU_NAME" "${ZONE_ARGS[@]}" --quiet
}

case $CMD in
  create|copy|install|run|tail|logs|stop|delete)
    if [[ $CMD != run && ${#EXTRA[@]} -gt 0 ]]; then die_usage "unexpected arguments for $CMD: ${EXTRA[*]}"; fi
    "cmd_$CMD" ;;
  "") die_usage "missing command" ;;
  *) die_usage "unknown command: $CMD" ;;
esac
