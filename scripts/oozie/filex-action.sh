#!/usr/bin/env bash
# Oozie shell action for one filex window:
#   filex-action.sh JOB.toml WINDOW_START WINDOW_END [filex submit options…]
# Runs `filex submit` with the window. Its progress goes to stderr (the launcher's log);
# stdout carries only what <capture-output/> reads: the Java properties filex writes to
# $OOZIE_ACTION_OUTPUT_PROPERTIES (application_id, state, final_status, exit_code, manifest,
# lines_in, lines_out, rejected, out_of_window, partitions; or error). The exit code is
# filex's: 0 succeeded, 1 failed, 2 usage/job file, 3 killed, 4 cluster unreachable.
# OOZIE_ACTION_CONF_XML (set by Oozie) gives filex the tag Oozie kills child applications by.
set -uo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 JOB.toml WINDOW_START WINDOW_END [filex submit options…]" >&2
  exit 2
fi
job="$1" start="$2" end="$3"
shift 3
filex="${FILEX_BIN:-filex}"

props="$(mktemp "${TMPDIR:-/tmp}/filex-action.XXXXXX")"
trap 'rm -f "$props"' EXIT

OOZIE_ACTION_OUTPUT_PROPERTIES="$props" "$filex" submit "$job" \
  --set "window.start=$start" --set "window.end=$end" "$@" 1>&2
rc=$?
cat "$props"
exit "$rc"
