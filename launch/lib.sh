# shellcheck shell=bash
# Shared by the launch scripts (sourced, not run): shell quoting and dry-run execution.

# Print arguments as one shell-quoted line (quotes only where needed).
q() {
  local out="" a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  printf '%s\n' "${out# }"
}

# Run a command, or only print it in dry-run mode (DRY_RUN=1).
run_cmd() {
  if [[ $DRY_RUN == 1 ]]; then q "$@"; else echo "+ $(q "$@")" >&2; "$@"; fi
}
