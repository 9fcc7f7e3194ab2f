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
# The engine benchmark formats a pool: refused over one without --force, and
# the pool it leaves checks clean.
expect_run_error bench --device "$pool_tmp/pool.img" --workload provision --seconds 0.1
expect 0 '"workload":"overwrite".*"writes_in_place":[1-9]' -- bench --device "$pool_tmp/pool.img" --force --workload overwrite --size 4M --qd 4 --seconds 0.1 --json
expect 0 '^clean' -- check --device "$pool_tmp/pool.img"
rm -rf "$pool_tmp"

# Thin volumes on a file: the issue's acceptance test. Data written to thin 1
# and snapshotted as thin 2 survives an overwrite of thin 1 in thin 2;
# unwritten ranges read as zeros; a pinned thin's runs can be listed; deleting
# the snapshot frees data; the pool checks clean.
thin_tmp=$(mktemp -d)
img=$thin_tmp/thin.img
truncate -s 256M "$img"
fail_check() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# expect_read LABEL FILE ARGS...: `thinp read ARGS --output OUT` exits 0 and
# OUT is byte for byte FILE.
expect_read() {
  local label=$1 want=$2
  shift 2
  checks=$((checks + 1))
  rm -f "$thin_tmp/out.bin"
  if ! "$thinp" read "$@" --output "$thin_tmp/out.bin" >/dev/null 2>"$thin_tmp/err"; then
    fail_check "$label: thinp read $* failed: $(head -3 "$thin_tmp/err")"
  elif ! cmp -s "$want" "$thin_tmp/out.bin"; then
    fail_check "$label: thinp read $* returned other bytes ($(cmp "$want" "$thin_tmp/out.bin" 2>&1 | head -1))"
  fi
}
# used_blocks: the 'data blocks: N used' number of thinp status.
used_blocks() {
  "$thinp" status --device "$img" 2>/dev/null | sed -n 's/^data blocks: \([0-9]*\) used.*/\1/p'
}
expect 0 '^formatted ' -- format --device "$img"
expect 0 '^created thin 1: 67108864 bytes' -- create --device "$img" --thin 1 --size 64M
head -c 4M /dev/urandom >"$thin_tmp/old.bin"
head -c 1M /dev/urandom >"$thin_tmp/part.bin"
expect 0 '^wrote 4194304 bytes to thin 1' -- write --device "$img" --thin 1 --offset 0 --input "$thin_tmp/old.bin"
expect 0 'created thin 2 as a snapshot of thin 1' -- snapshot --device "$img" --origin 1 --thin 2
expect 0 '^wrote 1048576 bytes' -- write --device "$img" --thin 1 --offset 1M --input "$thin_tmp/part.bin"
# What thin 1 should now hold in [0, 4M): the old data with [1M, 2M) replaced.
cp "$thin_tmp/old.bin" "$thin_tmp/new.bin"
dd if="$thin_tmp/part.bin" of="$thin_tmp/new.bin" bs=1M seek=1 conv=notrunc 2>/dev/null
checks=$((checks + 1))
cmp -s "$thin_tmp/old.bin" "$thin_tmp/new.bin" && fail_check "old and new data should differ"
expect_read "snapshot keeps the old data" "$thin_tmp/old.bin" --device "$img" --thin 2 --offset 0 --length 4M
expect_read "origin has the new data" "$thin_tmp/new.bin" --device "$img" --thin 1 --offset 0 --length 4M
head -c 8M /dev/zero >"$thin_tmp/zeros.bin"
expect_read "unwritten range reads zeros" "$thin_tmp/zeros.bin" --device "$img" --thin 1 --offset 32M --length 8M
# Writes that start and end inside sectors keep the other bytes of them.
printf 'abc' >"$thin_tmp/abc.bin"
expect 0 '^wrote 3 bytes' -- write --device "$img" --thin 1 --offset 777 --input "$thin_tmp/abc.bin"
printf 'abc' | dd of="$thin_tmp/new.bin" bs=1 seek=777 conv=notrunc 2>/dev/null
expect_read "3-byte write inside a sector" "$thin_tmp/new.bin" --device "$img" --thin 1 --offset 0 --length 4M
head -c 1000 /dev/urandom >"$thin_tmp/odd.bin"
expect 0 '^wrote 1000 bytes' -- write --device "$img" --thin 1 --offset 5000100 --input "$thin_tmp/odd.bin"
{ head -c 100 /dev/zero; cat "$thin_tmp/odd.bin"; head -c 100 /dev/zero; } >"$thin_tmp/odd_want.bin"
expect_read "unaligned write into an unwritten range" "$thin_tmp/odd_want.bin" --device "$img" --thin 1 --offset 5000000 --length 1200
checks=$((checks + 1))
if ! "$thinp" read --device "$img" --thin 2 --offset 1M --length 1M --output - 2>/dev/null |
  cmp -s - <(dd if="$thin_tmp/old.bin" bs=1M skip=1 count=1 2>/dev/null); then
  fail_check "thinp read --output - should write thin 2's [1M, 2M) to stdout"
fi
# Pinning and the pinned tree's runs (4 MiB of 64 KiB blocks: 64 mapped).
expect_run_error mappings --device "$img" --thin 2
expect 1 'thinp pin' -- mappings --device "$img" --thin 2
checks=$((checks + 1))
pin_out=$("$thinp" pin --device "$img" --thin 2 2>&1)
root=$(sed -n 's/^pinned thin 2 (root m:\([0-9]*\)).*/\1/p' <<<"$pin_out")
[ -n "$root" ] || fail_check "thinp pin should print 'pinned thin 2 (root m:N)', printed: $pin_out"
# A damaged page of the pinned tree (on a copy): a one-line corruption error
# naming the page.
cp "$img" "$thin_tmp/damaged.img"
printf 'XXXX' | dd of="$thin_tmp/damaged.img" bs=1 seek=$((${root:-0} * 4096 + 100)) conv=notrunc 2>/dev/null
expect_run_error mappings --device "$thin_tmp/damaged.img" --thin 2
expect 1 "corruption.*m:${root:-0}" -- mappings --device "$thin_tmp/damaged.img" --thin 2
rm -f "$thin_tmp/damaged.img"
expect 0 '^0 [0-9]+ [0-9]+ [0-9]+$' -- mappings --device "$img" --thin 2
expect 0 '^thin 2: [1-9][0-9]* runs, 64 blocks mapped' -- mappings --device "$img" --thin 2
expect 0 '^thin 2: 67108864 bytes \(1024 blocks\), 64 blocks mapped, pinned: yes$' -- status --device "$img"
expect 0 '^mode: write$' -- status --device "$img"
expect 0 '^thins: 2$' -- status --device "$img"
expect_run_error write --device "$img" --thin 2 --offset 0 --input "$thin_tmp/abc.bin"
expect_run_error delete --device "$img" --thin 2
expect 0 '^unpinned thin 2' -- unpin --device "$img" --thin 2
expect_run_error mappings --device "$img" --thin 2
used_before=$(used_blocks)
expect 0 '^deleted thin 2' -- delete --device "$img" --thin 2
used_after=$(used_blocks)
checks=$((checks + 1))
if ! [ -n "$used_before" ] || ! [ -n "$used_after" ] || [ "$used_after" -ge "$used_before" ]; then
  fail_check "used data blocks should drop when thin 2 is deleted: '$used_before' -> '$used_after'"
fi
expect 0 '^thins: 1$' -- status --device "$img"
expect_read "origin unchanged by the snapshot's deletion" "$thin_tmp/new.bin" --device "$img" --thin 1 --offset 0 --length 4M
expect 0 '^clean' -- check --device "$img"
# Errors: IO past the end, unknown thins, existing ids, bad sizes, bad files.
expect_run_error read --device "$img" --thin 1 --offset 64M --length 512 --output "$thin_tmp/x"
expect_run_error read --device "$img" --thin 1 --offset 63M --length 2M --output "$thin_tmp/x"
expect 1 'past the end of thin 1' -- write --device "$img" --thin 1 --offset 63M --input "$thin_tmp/old.bin"
expect_run_error write --device "$img" --thin 1 --offset 63M --input "$thin_tmp/old.bin"
expect_run_error read --device "$img" --thin 9 --offset 0 --length 512 --output "$thin_tmp/x"
expect 1 'no thin 9' -- read --device "$img" --thin 9 --offset 0 --length 512 --output "$thin_tmp/x"
expect_run_error write --device "$img" --thin 9 --offset 0 --input "$thin_tmp/abc.bin"
expect_run_error snapshot --device "$img" --origin 9 --thin 10
expect_run_error delete --device "$img" --thin 9
expect_run_error pin --device "$img" --thin 9
expect_run_error create --device "$img" --thin 1 --size 1M
expect_run_error write --device "$img" --thin 1 --offset 0 --input "$thin_tmp/missing.bin"
expect_run_error create --device "$thin_tmp/missing.img" --thin 3 --size 1M
expect_one_line_error create --device "$img" --thin 3 --size 64Q
expect_one_line_error create --device "$img" --thin 3 --size 0
expect_one_line_error read --device "$img" --thin 1 --offset 1X --length 1 --output "$thin_tmp/x"
expect_one_line_error write --device "$img" --thin x --offset 0 --input "$thin_tmp/abc.bin"
expect_one_line_error create --device "$img" --thin 3
expect_run_error status --device "$img" --data-device "$thin_tmp/missing.img"

# kill -9: a loop of `thinp write`s of distinct 64 KiB patterns to distinct
# offsets, killed (with the write in flight) at a random moment, several
# times. Afterwards the pool checks clean and every write whose `thinp write`
# exited 0 reads back intact. Meanwhile `thinp mappings` of a pinned thin
# works although another process has the pool open.
kimg=$thin_tmp/kill.img
truncate -s 128M "$kimg"
"$thinp" format --device "$kimg" >/dev/null
"$thinp" create --device "$kimg" --thin 1 --size 64M >/dev/null
"$thinp" create --device "$kimg" --thin 2 --size 1M >/dev/null
"$thinp" write --device "$kimg" --thin 2 --offset 0 --input "$thin_tmp/part.bin" >/dev/null
"$thinp" pin --device "$kimg" --thin 2 >/dev/null
cat >"$thin_tmp/writer.sh" <<'WRITER'
# writer.sh THINP IMAGE DIR FIRST COUNT: writes pattern FIRST.. to thin 1 at
# index * 64 KiB, logging each index after its thinp write exits 0.
thinp=$1 img=$2 dir=$3 first=$4 count=$5
for ((i = first; i < first + count; i++)); do
  head -c 65536 /dev/urandom >"$dir/pat.$i"
  "$thinp" write --device "$img" --thin 1 --offset $((i * 65536)) --input "$dir/pat.$i" >/dev/null 2>&1 &&
    echo "$i" >>"$dir/done.log"
done
WRITER
: >"$thin_tmp/done.log"
kills=0
for round in 0 1 2 3; do
  # Its own process group, so that kill -9 takes the loop and the thinp
  # process under it at once.
  setsid bash "$thin_tmp/writer.sh" "$thinp" "$kimg" "$thin_tmp" $((round * 200)) 200 &
  writer=$!
  sleep "0.$((RANDOM % 8 + 2))"
  expect 0 '^thin 2: [1-9][0-9]* runs, 16 blocks mapped' -- mappings --device "$kimg" --thin 2
  sleep "0.$((RANDOM % 10))"
  if kill -9 -- -"$writer" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$writer" 2>/dev/null
  expect 0 '^clean' -- check --device "$kimg"
done
checks=$((checks + 1))
completed=$(wc -l <"$thin_tmp/done.log")
if [ "$kills" -eq 0 ] || [ "$completed" -eq 0 ]; then
  fail_check "kill -9 test did nothing: $kills kills, $completed completed writes"
fi
checks=$((checks + 1))
lost=0
while read -r i; do
  if ! "$thinp" read --device "$kimg" --thin 1 --offset $((i * 65536)) --length 64k \
    --output "$thin_tmp/back.bin" >/dev/null 2>&1 || ! cmp -s "$thin_tmp/pat.$i" "$thin_tmp/back.bin"; then
    lost=$((lost + 1))
    [ "$lost" -le 3 ] && echo "kill -9: acknowledged write $i does not read back"
  fi
done <"$thin_tmp/done.log"
[ "$lost" -eq 0 ] || fail_check "kill -9: $lost of $completed acknowledged writes lost"
echo "cli: kill -9 test: $kills kills, $completed acknowledged writes checked"
expect_read "pinned thin 2 intact after the kills" "$thin_tmp/part.bin" --device "$kimg" --thin 2 --offset 0 --length 1M
rm -rf "$thin_tmp"

# Crash sweep: every crash point of a short run (sampled), recovered and checked.
expect 0 '^crash-sweep: scenario pool seed 3: [0-9]+ crash points' -- sim crash-sweep --scenario pool --seed 3 --ops 100 --points 30 --states 2 --jobs 2
expect 0 '^60 passed, 0 failed$' -- sim crash-sweep --scenario pool --seed 3 --ops 100 --points 30 --states 2 --jobs 2
expect_one_line_error sim crash-sweep --scenario disk --seed 1
expect_one_line_error sim crash-sweep --scenario pool --seed 1 --points 0

# Growing the data area after the file grew.
grow_tmp=$(mktemp -d)
truncate -s 64M "$grow_tmp/g.img"
expect 0 '^formatted ' -- format --device "$grow_tmp/g.img"
expect 0 'data blocks: 0 used, 1008 free, 1008 total' -- status --device "$grow_tmp/g.img"
truncate -s 128M "$grow_tmp/g.img"
expect 0 '^data blocks: 1008 -> 2032$' -- grow --device "$grow_tmp/g.img"
expect 0 'data blocks: 0 used, 2032 free, 2032 total' -- status --device "$grow_tmp/g.img"
expect 0 'has no room for more' -- grow --device "$grow_tmp/g.img"
expect 0 '^clean' -- check --device "$grow_tmp/g.img"
rm -rf "$grow_tmp"

echo "cli: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
