#!/usr/bin/env bash
# test_demo.sh: `rivulet demo` (the main job behind `make demo`) on a fresh embedded log: it
# finishes, writes exactly the samples it reports, summarises every car and lap, leaves a topic
# that `rivulet consume` reads back, and rejects bad options with a clear message.
#
# usage: bash test_demo.sh PATH_TO_RIVULET SOURCE_DIR
set -u
RIVULET=${1:?usage: test_demo.sh PATH_TO_RIVULET SOURCE_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
B="local:$TMP/data"
unset RIVULET_BROKER
pass=0
fail=0
check() {
    if eval "$2"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        printf 'FAIL: %s\n' "$1" >&2
    fi
}

out=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 2>"$TMP/err")
rc=$?
check "demo exits 0 (stderr: $(cat "$TMP/err"))" '[[ $rc == 0 ]]'
written=$(sed -n 's/^wrote \([0-9]*\) samples.*/\1/p' <<<"$out")
read_back=$(sed -n 's/^read  \([0-9]*\) samples.*/\1/p' <<<"$out")
check "demo reports what it wrote" '[[ -n $written && $written -gt 1000 ]]'
check "demo read back every sample ($read_back of $written)" '[[ $read_back == "$written" ]]'
check "one summary row per car and lap" \
    '[[ $(grep -cE "^car-0[1-3] +[12] " <<<"$out") == 6 ]]'
check "a best flying lap per car" '[[ $(grep -c "best flying lap: lap 2" <<<"$out") == 3 ]]'

# The topic holds exactly the reported samples, as JSON keyed by car.
stored=$("$RIVULET" consume -b "$B" -t demo-telemetry -e -f '%k\n' 2>/dev/null | wc -l)
check "the topic holds $written records (found $stored)" '[[ $stored == "$written" ]]'
first=$("$RIVULET" consume -b "$B" -t demo-telemetry -c 1 -e 2>/dev/null)
check "records are JSON samples" \
    '"$RIVULET" json -q <<<"$first" && grep -q "\"speed_kmh\":" <<<"$first"'

# A second run replaces the topic rather than appending to it.
timeout 120 "$RIVULET" demo -b "$B" --cars 1 --laps 1 --rate 20 >"$TMP/out2" 2>&1
w2=$(sed -n 's/^wrote \([0-9]*\) samples.*/\1/p' "$TMP/out2")
s2=$("$RIVULET" consume -b "$B" -t demo-telemetry -e -f '%k\n' 2>/dev/null | wc -l)
check "a rerun starts a fresh topic ($s2 stored, $w2 written)" '[[ -n $w2 && $s2 == "$w2" ]]'

# Bad options name what was wrong.
err=$("$RIVULET" demo -b "$B" --cars 0 2>&1)
rc=$?
check "--cars 0 is a usage error naming the option" \
    '[[ $rc == 2 && $err == *"--cars needs a number from 1 to 20"* ]]'
err=$("$RIVULET" demo -b "bogus:x" 2>&1)
rc=$?
check "a bad broker URL is reported" '[[ $rc == 1 && $err == *"bogus:x"* ]]'

echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
