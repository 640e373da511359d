#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan, UBSan) in build-fuzz/ and runs
# each for FUZZ_SECONDS, one at a time. A crash, timeout, leak or OOM input
# is copied into tests/fuzz/corpus/<target>/ (the regression corpus that
# `make test` replays) and makes the run fail. Prints a table per target:
# CPU seconds, executions, coverage (cov/ft) and findings.
#
#   scripts/fuzz.sh                       all targets, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh http jwt
#   FUZZ_MERGE=1 scripts/fuzz.sh          also minimise the working corpus
#                                         into build-fuzz/fuzz/merged (-merge=1)
#   FUZZ_CPU=1 FUZZ_SECONDS=300 ...       the budget is CPU seconds of the
#                                         fuzzer (a shared machine), not wall
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_FUZZ:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
RSS_MB=${FUZZ_RSS_MB:-2048}
JOBS=${JOBS:-$(nproc)}
ALL=(decoder reassembly http http2 extractor jwt jwks config intake pipeline)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [ -f "tests/fuzz/${t}_fuzzer.cc" ] || { echo "fuzz: no target '$t' (have: ${ALL[*]})" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz: clang++ missing: run scripts/install-deps.sh fuzz" >&2; exit 2; }

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
        -DCMAKE_CXX_COMPILER=clang++ -DTOKENWATCH_FUZZ=ON -DTOKENWATCH_BUILD_TESTS=OFF \
        "${launcher[@]}"
fi
cmake --build "$BUILD" -j "$JOBS" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")

OUT=$BUILD/fuzz
[ -d "$OUT/seeds" ] || python3 tests/fuzz/make-seeds.py "$OUT/seeds"

dict_for() {
  case $1 in
    http|extractor|reassembly|pipeline) echo tests/fuzz/dicts/http.dict ;;
    http2) echo tests/fuzz/dicts/http2.dict ;;
    jwks) echo tests/fuzz/dicts/json.dict ;;
    jwt) echo tests/fuzz/dicts/jwt.dict ;;
    config) echo tests/fuzz/dicts/config.dict ;;
  esac
}

table=()
failed=0
for t in "${TARGETS[@]}"; do
  work=$OUT/work/$t art=$OUT/artifacts/$t/ log=$OUT/logs/$t.log
  mkdir -p "$work" "$art" "$OUT/logs" "tests/fuzz/corpus/$t"
  rm -f "$art"/*
  dict=$(dict_for "$t")
  args=(-max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" -timeout=10
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$art")
  [ -n "$dict" ] && args+=(-dict="$dict")
  seeds=()
  [ -d "$OUT/seeds/$t" ] && seeds=("$OUT/seeds/$t")
  echo "fuzz: $t for ${SECONDS_EACH}s (log: $log)"
  # New inputs go to the first directory (the working corpus); the
  # committed corpus and the seeds are read only.
  set +e
  if [ "${FUZZ_CPU:-0}" = 1 ]; then
    # CPU budget: wall time is only a backstop (10x); a watcher interrupts
    # the fuzzer (SIGINT: final stats, exit 72) once it has used the budget.
    args[0]=-max_total_time=$((SECONDS_EACH * 10))
    /usr/bin/time -f '%U %S' -o "$OUT/logs/$t.time" \
      "$OUT/fuzz_$t" "${args[@]}" "$work" "tests/fuzz/corpus/$t" "${seeds[@]}" >"$log" 2>&1 &
    timer=$!
    tick=$(getconf CLK_TCK)
    while kill -0 "$timer" 2>/dev/null; do
      pid=$(pgrep -P "$timer" -x "fuzz_$t" | head -1 || true)
      if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
        used=$(awk -v t="$tick" '{print int(($14 + $15) / t)}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        if [ "${used:-0}" -ge "$SECONDS_EACH" ]; then kill -INT "$pid" 2>/dev/null || true; break; fi
      fi
      sleep 1
    done
    wait "$timer"
    rc=$?
    [ "$rc" -eq 72 ] && rc=0  # interrupted by the watcher: a normal end
  else
    /usr/bin/time -f '%U %S' -o "$OUT/logs/$t.time" \
      "$OUT/fuzz_$t" "${args[@]}" "$work" "tests/fuzz/corpus/$t" "${seeds[@]}" >"$log" 2>&1
    rc=$?
  fi
  set -e
  cpu=$(tail -1 "$OUT/logs/$t.time" 2>/dev/null | awk '{printf "%.0f", $1 + $2}')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | awk '{print $2 "/" $4}')
  found=0
  for f in "$art"/*; do
    [ -f "$f" ] || continue
    found=$((found + 1))
    kind=$(basename "$f" | cut -d- -f1)
    cp "$f" "tests/fuzz/corpus/$t/regress-$kind-$(sha1sum "$f" | cut -c1-16)"
    echo "fuzz: $t: $kind input saved as tests/fuzz/corpus/$t/regress-$kind-$(sha1sum "$f" | cut -c1-16)"
  done
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    failed=1
    echo "fuzz: $t FAILED (exit $rc); the report:" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*invariant failed|    #[0-9] )' "$log" | head -30 >&2 || true
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    mkdir -p "$OUT/merged/$t"
    rm -f "$OUT/merged/$t"/*
    "$OUT/fuzz_$t" -merge=1 -max_len=65536 -rss_limit_mb="$RSS_MB" "$OUT/merged/$t" \
      "tests/fuzz/corpus/$t" "$work" "${seeds[@]}" >"$OUT/logs/$t.merge.log" 2>&1
    echo "fuzz: $t: minimised corpus in $OUT/merged/$t ($(ls "$OUT/merged/$t" | wc -l) inputs)"
  fi
  table+=("$(printf '%-11s %8s %12s %13s %8s' "$t" "$cpu" "${execs:-?}" "${cov:-?}" "$found")")
done

printf '\n%-11s %8s %12s %13s %8s\n' target cpu_s execs cov/ft crashes
printf '%s\n' "${table[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED: crashing inputs were added to tests/fuzz/corpus/ (see above)" >&2
  exit 1
fi
echo "fuzz: no crashes"
