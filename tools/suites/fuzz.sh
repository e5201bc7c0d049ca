#!/bin/sh
# Fuzz suite for `make check`: builds every libFuzzer harness in core/fuzz/ (plain C, no Lua)
# with clang -fsanitize=fuzzer,address,undefined against the core sources its "Build:" comment
# names (every non-binding source when it names none), and runs each briefly (FUZZ_SECONDS in
# all, 20 by default, shared between harnesses, 10 at least each). A harness passes when it
# builds and finds nothing. Each run works in its own temporary directory (several checkouts'
# suites may run at once); a failing harness leaves its binary, log and crash inputs in
# build/fuzz/<harness>/ for replay: build/fuzz/<harness>/run <crash-file>.
# Prints one line: "SUITE fuzz <passed> <failed>".
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
total=${FUZZ_SECONDS:-20}
passed=0; failed=0
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT INT TERM
harnesses=$(ls core/fuzz/*.c 2>/dev/null)
count=$(echo "$harnesses" | grep -c .)
[ "$count" -gt 0 ] || { echo "SUITE fuzz 0 0"; exit 0; }
each=$((total / count)); [ "$each" -lt 10 ] && each=10
for h in $harnesses; do
  name=$(basename "$h" .c)
  dir=$work/$name
  mkdir -p "$dir/corpus"
  # the sources named on the harness's "Build:" comment line(s); all non-binding ones otherwise
  srcs=$(sed -n '/Build:/,/\*\//p' "$h" | grep -o 'core/[a-z0-9_]*\.c' | sort -u)
  [ -n "$srcs" ] || srcs=$(ls core/*.c | grep -v '/lua_')
  # a few seeds so the first seconds are not spent finding the input format
  printf '\010\226\001' >"$dir/corpus/seed-varint"
  printf '\022\003abc\035\001\000\000\000' >"$dir/corpus/seed-len-fixed"
  printf '\123\010\001\124' >"$dir/corpus/seed-group"
  # inputs that once broke the decoder's size-hint contract (fuzz_decode checks hints are bounds):
  # a truncated map record that opened a message, and repeated groups counted as one
  printf '\352\003\210\001\000o' >"$dir/corpus/seed-hint-truncated"
  printf 'AAAAAAAAGAAAAP//AAD/ABgAAAAAAAAAAADbv9s=' | base64 -d >"$dir/corpus/seed-hint-groups"
  printf '{"a":[1,2.5,"x",true,null]}' >"$dir/corpus/seed-json"
  if ! env -u LD_PRELOAD clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
      -std=c11 -D_GNU_SOURCE -Icore "$h" $srcs -o "$dir/run" -lnghttp2 -lssl -lcrypto -lz -lm \
      >"$dir/build.log" 2>&1; then
    echo "fuzz: $name does not build:"; sed 's/^/  /' "$dir/build.log" | head -30
    failed=$((failed + 1)); continue
  fi
  if (cd "$dir" && env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1 timeout $((each + 60)) ./run \
      -max_total_time="$each" -max_len=8192 -rss_limit_mb=1024 -artifact_prefix=./ \
      -print_final_stats=0 corpus >run.log 2>&1); then
    echo "fuzz: $name: ok ($(grep -o 'Done [0-9]* runs' "$dir/run.log" | head -n 1) in ${each}s)"
    passed=$((passed + 1))
  else
    echo "fuzz: $name FAILED:"; tail -n 40 "$dir/run.log" | sed 's/^/  /'
    mkdir -p "build/fuzz/$name"
    cp "$dir/run" "$dir/run.log" "build/fuzz/$name/" 2>/dev/null
    for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
      [ -f "$a" ] && cp "$a" "build/fuzz/$name/"
    done
    echo "  (kept in build/fuzz/$name/)"
    failed=$((failed + 1))
  fi
done
echo "SUITE fuzz $passed $failed"
