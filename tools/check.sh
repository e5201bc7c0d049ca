#!/bin/sh
# Runs every suite of `make check` and ends with one plain line: "N passed, M failed".
# Suites: busted under lua5.4 (all specs), under luajit (all but #heavy), the lua5.4 specs again
# against the ASan/UBSan build of the core (all but #heavy and #nosan), then the C fuzz smoke run.
# Spec files taking part in the sanitizer pass: every spec, minus the tags above (docs/testing.md).
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
passed=0; failed=0; skipped=0
results=$(mktemp); trap 'rm -f "$results"' EXIT

# run_busted NAME BUILD INTERP [busted args...]
run_busted() {
  name=$1; build=$2; interp=$3; shift 3
  echo "== suite $name"
  out=$(mktemp)
  (
    LGRPC_TOP=$top; LGRPC_BUILD=$build; . tools/env.sh
    if [ "$build" = asan ]; then
      LGRPC_ASAN_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
      export LGRPC_ASAN_PRELOAD
      # Lua's own allocations are freed at exit only when busted closes the state; leak checks
      # are left to the C harnesses, which own every allocation.
      ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LD_PRELOAD="$LGRPC_ASAN_PRELOAD" "$interp" /usr/bin/busted -o plainTerminal "$@"
    else
      "$interp" /usr/bin/busted -o plainTerminal "$@"
    fi
  ) >"$out" 2>&1
  rc=$?
  cat "$out"
  line=$(grep -E '^[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
  if [ -z "$line" ]; then
    echo "suite $name: no summary from busted (exit $rc): counted as 1 failure"
    echo "$name 0 1 0" >>"$results"
  else
    s=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $4}')
    e=$(echo "$line" | awk '{print $7}'); p=$(echo "$line" | awk '{print $10}')
    bad=$((f + e))
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    echo "$name $s $bad $p" >>"$results"
  fi
  rm -f "$out"
}

run_busted lua5.4 lua5.4 lua5.4
run_busted luajit luajit luajit --exclude-tags=heavy
run_busted asan asan lua5.4 --exclude-tags=heavy,nosan

# Extra suites (tools/suites/*.sh) print one "SUITE name passed failed" line per suite they run.
for s in tools/suites/*.sh; do
  [ -f "$s" ] || continue
  echo "== suite $(basename "$s" .sh)"
  out=$(mktemp)
  LGRPC_TOP=$top sh "$s" >"$out" 2>&1
  rc=$?
  cat "$out"
  if grep -q '^SUITE ' "$out"; then
    grep '^SUITE ' "$out" | while read -r _ n p f; do echo "$n $p $f 0" >>"$results"; done
  else
    echo "$(basename "$s" .sh) 0 1 0" >>"$results"
    echo "suite $(basename "$s" .sh): printed no SUITE line (exit $rc): counted as 1 failure"
  fi
  rm -f "$out"
done

echo
echo "== totals by suite"
while read -r n p f k; do
  echo "  $n: $p passed, $f failed, $k skipped"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
done <"$results"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
