#!/usr/bin/env bash
# fuzz.sh runs every Fuzz target of the module, one at a time, each for
# FUZZTIME (default 30s), and prints a table of what each reached. A
# target that fails leaves its crasher where go test writes it, in the
# package's testdata/fuzz/<target>/, to be committed as a regression seed:
# from then on a plain go test runs it. The files new since the start are
# listed at the end, and the run fails if any target failed.
#
# FUZZ_GUIDED=1 (the default) fuzzes as go test -fuzz does, guided by
# coverage: every package the target's test binary holds is compiled
# again with coverage counters, which takes minutes on a cold cache.
# FUZZ_GUIDED=0 runs the fuzzing engine without that guidance, in test
# binaries built with -race as make unit builds them, so that on CI they
# come from the build cache: mutations of the seeds and of the corpus
# earlier runs kept, for a smoke run of a few seconds.
#
# Usage: FUZZTIME=3s hack/fuzz.sh [package dir...]
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZ_GUIDED=${FUZZ_GUIDED:-1}

# targets prints "<package dir> <target>" for each Fuzz function in the
# module's test files (tracked or new), or in those below the given dirs.
targets() {
	git ls-files -co --exclude-standard -- "${@:-.}" | grep '_test\.go$' | grep -v '^test/tools/' |
		while read -r f; do [ -f "$f" ] && echo "$f"; done |
		xargs -r grep -HoE '^func Fuzz[A-Za-z0-9_]*\(' |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#./\1 \2#; s#^[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' |
		sort -u
}

seeds() { git ls-files -co --exclude-standard | grep '/testdata/fuzz/' | sort || true; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seeds >"$work/before"
: >"$work/table"

mapfile -t list < <(targets "$@")
if [ ${#list[@]} -eq 0 ]; then
	echo "no Fuzz targets found" >&2
	exit 1
fi
mode="guided by coverage"
[ "$FUZZ_GUIDED" = 1 ] || mode="unguided, in the -race test binaries"
echo ">> fuzzing ${#list[@]} targets for $FUZZTIME each, $mode"
cache=$($GO env GOCACHE)/fuzz
failed=0
start=$SECONDS
for entry in "${list[@]}"; do
	read -r dir name <<<"$entry"
	echo ">> $name ($dir)"
	t0=$SECONDS
	result=ok
	if [ "$FUZZ_GUIDED" = 1 ]; then
		run() { $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$dir"; }
	else
		bin="$work/$(echo "$dir" | tr -c 'A-Za-z0-9\n' _).test"
		if [ ! -x "$bin" ]; then
			CGO_ENABLED=1 $GO test -race -c -o "$bin" "$dir"
		fi
		# As go test runs it: from the package's folder, with the corpus
		# go test keeps in the build cache.
		run() {
			(cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$FUZZTIME" \
				-test.fuzzcachedir "$cache/$($GO list -f '{{.ImportPath}}' .)" -test.paniconexit0 -test.timeout 10m)
		}
	fi
	# Go 1.26's fuzzing coordinator may fail a target with a bare
	# "context deadline exceeded" as its time ends, having found nothing
	# (go.dev/issue/75804, fixed in Go 1.27): it sees the deadline on the
	# parent context before the workers' context is cancelled. A crash
	# always writes its input first, so a failure without one is run
	# again, twice at most.
	for attempt in 1 2 3; do
		if run 2>&1 | tee "$work/log"; then
			break
		fi
		if [ "$attempt" -lt 3 ] && grep -q '^ *context deadline exceeded$' "$work/log" && ! grep -q 'Failing input written to' "$work/log"; then
			echo ">> $name: the coordinator's deadline race (go.dev/issue/75804), not a crash: again"
			result="ok (retried)"
			continue
		fi
		result=FAILED
		failed=$((failed + 1))
		break
	done
	# The fuzzer prints "fuzz: elapsed: 3s, execs: 12345 (4115/sec), ..."
	# as it goes; the last one is the total.
	execs=$(grep -oE 'execs: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2 || true)
	printf '%s\t%s\t%s\t%s\t%ss\n' "$name" "$dir" "${execs:-?}" "$result" "$((SECONDS - t0))" >>"$work/table"
done

echo
echo ">> fuzzed ${#list[@]} targets for $FUZZTIME each, $mode, in $((SECONDS - start))s"
{
	printf 'target\tpackage\texecs\tresult\twall\n'
	cat "$work/table"
} | awk -F'\t' '{ printf "%-30s %-20s %10s %-12s %s\n", $1, $2, $3, $4, $5 }'

new=$(comm -13 "$work/before" <(seeds))
if [ -n "$new" ]; then
	echo
	echo ">> new regression seeds (crashers), to be committed:"
	echo "$new"
fi
if [ "$failed" -gt 0 ]; then
	echo ">> $failed targets failed" >&2
	exit 1
fi
