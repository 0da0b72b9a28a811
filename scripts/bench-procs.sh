# Sourced by the bench scripts that start processes (bench.sh, bench-live.sh,
# bench-remote.sh): log and die prefixed with $bench_name, the list of
# started processes (pids; die shows the tail of $last_log), and a cleanup
# on exit that stops them newest first and removes $work unless BENCH_KEEP
# is set. Set bench_name before sourcing it.

log() { printf '%s: %s\n' "$bench_name" "$*" >&2; }

pids=()
last_log=""
work=""
die() {
	printf '%s: FAILED: %s\n' "$bench_name" "$*" >&2
	if [[ -n $last_log && -s $last_log ]]; then
		printf '%s: last lines of %s:\n' "$bench_name" "$last_log" >&2
		tail -n 20 "$last_log" | sed 's/^/    /' >&2
	fi
	exit 1
}

# stop PID: SIGTERM, then SIGKILL after 10 s.
stop() {
	local pid=$1
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 10))
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop "${pids[i]}"
	done
	if [[ -n $work && -n ${BENCH_KEEP:-} ]]; then
		log "work directory kept: $work"
	elif [[ -n $work ]]; then
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
