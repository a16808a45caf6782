#!/usr/bin/env bash
# test.sh is `make test`, what CI runs: every check and every test, on a
# cold machine within the hour on 2 cores.
#
# Cold, the builds (the control plane, Traefik, Skipper, golangci-lint)
# take longer than the tests, and the tests mostly wait on API servers.
# So the tests start as soon as the control plane they all need is built,
# and what only later steps need is built beside them at low priority,
# on the cores they leave idle:
#
#   foreground               background
#   verify                   modules and Debian packages (network)
#   control plane            Traefik, Skipper (nice 15)
#   -race packages           golangci-lint, with go vet's analyzers (nice 19)
#   the rest but the proxies'
#   the proxies' packages    (waits for Traefik and Skipper first)
#   short fuzzing            (waits for golangci-lint first)
#
# The background's output goes to logs under the cache folder, printed
# when a step fails. Warm, every background step is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
CACHE_DIR=${CACHE_DIR:?CACHE_DIR is the tool cache folder}
logs="$CACHE_DIR/test-logs"
mkdir -p "$logs"
make_() { "$MAKE" --no-print-directory "$@"; }
start=$SECONDS
say() { printf '>> [%dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }

# Each background step runs in its own session, so that a failure of the
# foreground stops it with everything it started.
pids=()
background() {
	local name=$1 niceness=$2
	shift 2
	say "in the background at nice $niceness: $name (log: $logs/$name.log)"
	# A new session is a new scheduling autogroup where the kernel has
	# them, and a task's nice weighs only inside its own autogroup: the
	# autogroup gets the same nice, or it would share the cores evenly
	# with the foreground.
	setsid -w bash -c 'n=$1; shift; echo "$n" >/proc/self/autogroup 2>/dev/null; exec nice -n "$n" "$@"' \
		- "$niceness" "$@" >"$logs/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
}
stop_background() {
	local pid
	for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_background EXIT
# await waits for a background step and fails with its log if it failed.
await() {
	local name=$1 pid
	pid=$(eval "echo \$pid_$name")
	say "waiting for $name"
	if ! wait "$pid"; then
		say "$name failed; its log ($logs/$name.log):"
		cat "$logs/$name.log"
		exit 1
	fi
	say "$name done"
}

background packages 0 "$MAKE" --no-print-directory prefetch test-packages
background dataplane 15 "$MAKE" --no-print-directory dataplane
background checks 19 "$MAKE" --no-print-directory lint

say "verify"
make_ verify
make_ controlplane
await packages
say "the -race packages"
make_ test-race
say "the packages that need no proxy"
make_ test-rest
await dataplane
say "the proxies' packages"
make_ test-dataplane
await checks
say "short fuzzing"
make_ fuzz-short
say "make test passed"
