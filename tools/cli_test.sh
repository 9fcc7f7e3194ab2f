#!/usr/bin/env bash
# End-to-end checks of the thinp CLI as a user meets it. Usage: cli_test.sh THINP
# Each check names what it expects; the script stops at the first failure and
# prints what the command actually did.
set -u
thinp=$1
failures=0
checks=0

# expect CODE PATTERN -- ARGS...: exit code CODE, combined output matches PATTERN.
expect() {
  local code=$1 pattern=$2
  shift 3
  checks=$((checks + 1))
  local out rc
  out=$("$thinp" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: thinp $* -> exit $rc (wanted $code), output:"
    echo "$out" | head -20
    failures=$((failures + 1))
  fi
}

# expect_one_line_error ARGS...: exit 2 and exactly one line on stderr.
expect_one_line_error() {
  checks=$((checks + 1))
  local err rc
  err=$("$thinp" "$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -ne 2 ] || [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] || ! grep -q '^thinp: error: ' <<<"$err"; then
    echo "FAIL: thinp $* should print one 'thinp: error:' line and exit 2; got exit $rc:"
    echo "$err"
    failures=$((failures + 1))
  fi
}

expect 0 '^thinp [0-9]+\.[0-9]+\.[0-9]+$' -- --version
expect 0 'Subcommands:' -- --help
expect 0 'sweep' -- sim --help
expect_one_line_error frob
expect_one_line_error --bogus
expect_one_line_error sim walk
expect_one_line_error sim run --scenario disk
expect_one_line_error sim run --scenario no-such --seed 1
expect_one_line_error sim sweep --scenario disk --seeds 9..1
expect_one_line_error sim sweep --scenario disk --seeds x
expect_one_line_error bench --device /nonexistent --raw --workload randread --bs 4q

# Benchmarks: argument errors, and the metadata benchmark's JSON.
expect_one_line_error bench --workload randread
expect_one_line_error bench metadata --mappings 10 --pattern sideways
expect 0 '"bytes_per_mapping":0\.0' -- bench metadata --mappings 100000 --pattern sequential --json

# The disk scenario: deterministic digests, different seeds differ, a sweep
# closes with the counts line.
if "$thinp" sim run --scenario disk --seed 1 >/dev/null 2>&1; then
  a=$("$thinp" sim run --scenario disk --seed 7)
  b=$("$thinp" sim run --scenario disk --seed 7)
  c=$("$thinp" sim run --scenario disk --seed 8)
  checks=$((checks + 3))
  if ! grep -qE 'digest=[0-9a-f]{16}$' <<<"$a"; then echo "FAIL: no digest in: $a"; failures=$((failures + 1)); fi
  if [ "$a" != "$b" ]; then echo "FAIL: seed 7 twice differs: $a / $b"; failures=$((failures + 1)); fi
  if [ "${a##*digest=}" = "${c##*digest=}" ]; then echo "FAIL: seeds 7 and 8 share a digest"; failures=$((failures + 1)); fi
  expect 0 '^20 passed, 0 failed$' -- sim sweep --scenario disk --seeds 1..20 --jobs 2
  # The checker can fail: with FLUSH broken, some seed must fail and each
  # failure must come with a replay command.
  expect 1 'replay: thinp sim run --scenario disk --seed [0-9]+ --bug disk-flush-noop --verbose' \
    -- sim sweep --scenario disk --seeds 1..40 --bug disk-flush-noop --jobs 2
  # A saved trace replays clean; a trace of a broken disk fails on replay.
  tmp=$(mktemp -d)
  "$thinp" sim run --scenario disk --seed 5 --save-trace "$tmp/good.trace" >/dev/null
  "$thinp" sim run --scenario disk --seed 5 --bug disk-flush-noop --save-trace "$tmp/bad.trace" >/dev/null
  expect 0 'every read allowed by the disk model' -- sim replay --trace "$tmp/good.trace"
  expect 1 '^FAILED replay' -- sim replay --trace "$tmp/bad.trace"
  head -c 300 "$tmp/good.trace" >"$tmp/cut.trace"
  expect_one_line_error sim replay --trace "$tmp/cut.trace"
  expect_one_line_error sim replay --trace "$tmp/missing.trace"
  rm -rf "$tmp"
else
  echo "FAIL: thinp sim run --scenario disk --seed 1 failed:"
  "$thinp" sim run --scenario disk --seed 1 2>&1 | head -5
  failures=$((failures + 1))
fi

# Pool administration on a file: format, status, refusal to re-format,
# --force, check, and one-line errors (exit 1) for garbage and corruption.
# expect_run_error ARGS...: exit 1 and exactly one 'thinp: error:' line on stderr.
expect_run_error() {
  checks=$((checks + 1))
  local err rc
  err=$("$thinp" "$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -ne 1 ] || [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] || ! grep -q '^thinp: error: ' <<<"$err"; then
    echo "FAIL: thinp $* should print one 'thinp: error:' line and exit 1; got exit $rc:"
    echo "$err"
    failures=$((failures + 1))
  fi
}
pool_tmp=$(mktemp -d)
truncate -s 64M "$pool_tmp/pool.img"
expect 0 '^formatted ' -- format --device "$pool_tmp/pool.img"
expect 0 'data blocks: 0 used, [0-9]+ free' -- status --device "$pool_tmp/pool.img"
expect_run_error format --device "$pool_tmp/pool.img"
expect 1 'already holds a thinp pool' -- format --device "$pool_tmp/pool.img"
expect 0 '^formatted .* of 128 KiB' -- format --device "$pool_tmp/pool.img" --force --block-size 128k --metadata-size 4M
expect 0 '^clean' -- check --device "$pool_tmp/pool.img"
expect_one_line_error format --device "$pool_tmp/pool.img" --block-size 64q
head -c 8M /dev/urandom >"$pool_tmp/garbage.img"
expect_run_error check --device "$pool_tmp/garbage.img"
expect_run_error status --device "$pool_tmp/garbage.img"
# Corrupt both superblock slots inside (magic kept): corruption; then
# overwrite them whole: not a pool. Both one line, exit 1.
cp "$pool_tmp/pool.img" "$pool_tmp/bad.img"
for slot in 0 1; do
  printf 'XXXXXXXX' | dd of="$pool_tmp/bad.img" bs=1 seek=$((slot * 4096 + 300)) conv=notrunc 2>/dev/null
done
expect_run_error check --device "$pool_tmp/bad.img"
expect 1 'corruption' -- check --device "$pool_tmp/bad.img"
dd if=/dev/urandom of="$pool_tmp/bad.img" bs=4096 count=2 conv=notrunc 2>/dev/null
expect_run_error status --device "$pool_tmp/bad.img"
expect_run_error check --device "$pool_tmp/missing.img"
# Two devices: metadata and data.
truncate -s 8M "$pool_tmp/meta.img"
truncate -s 64M "$pool_tmp/data.img"
expect 0 '^formatted ' -- format --device "$pool_tmp/meta.img" --data-device "$pool_tmp/data.img"
expect 0 'data blocks: 0 used, 1024 free' -- status --device "$pool_tmp/meta.img" --data-device "$pool_tmp/data.img"
expect_run_error status --device "$pool_tmp/meta.img"
# A loop device, where root and losetup allow it.
if [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null 2>&1 &&
  loop=$(losetup -f --show "$pool_tmp/pool.img" 2>/dev/null); then
  expect 0 '^formatted ' -- format --device "$loop" --force
  expect 0 'data blocks: 0 used' -- status --device "$loop"
  expect 0 '^clean' -- check --device "$loop"
  losetup -d "$loop"
else
  echo "cli: loop device checks skipped (need root and losetup)"
fi
rm -rf "$pool_tmp"

echo "cli: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
