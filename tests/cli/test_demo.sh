#!/usr/bin/env bash
# test_demo.sh: `rivulet demo` (the main job behind `make demo`) on a fresh embedded log: it
# finishes, writes exactly the samples it reports, runs them through its application (derived
# channels, events, lap summaries) with counts that add up across its four topics, gives the
# same results for the same seed, prints the application's metrics on request, leaves topics
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
count() { # records stored in topic $1
    "$RIVULET" consume -b "$B" -t "$1" -e -f '%k\n' 2>/dev/null | wc -l
}

# The session of seed 1 with 3 cars, 2 laps at 50 Hz: these exact figures come from the
# simulation; a change to it must update them (and say why in the commit).
SEED1_SAMPLES=38742
SEED1_GEAR_CHANGES=365
SEED1_FAST_ENTRIES=30

out=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 2>"$TMP/err")
rc=$?
check "demo exits 0 (stderr: $(cat "$TMP/err"))" '[[ $rc == 0 ]]'
written=$(sed -n 's/^wrote \([0-9]*\) samples.*/\1/p' <<<"$out")
processed=$(sed -n 's/^processed \([0-9]*\) samples.*/\1/p' <<<"$out")
out_records=$(sed -n 's/^processed .*records\/s; \([0-9]*\) records out, 0 errors.*/\1/p' <<<"$out")
events=$(sed -n "s/.*'demo-events' \([0-9]*\): \([0-9]*\) gear changes and \([0-9]*\) entries.*/\1 \2 \3/p" <<<"$out")
read -r ev_total ev_gears ev_fast <<<"$events"
check "the seeded session has exactly $SEED1_SAMPLES samples (wrote $written)" \
    '[[ $written == "$SEED1_SAMPLES" ]]'
check "the application processed every sample ($processed of $written)" \
    '[[ $processed == "$written" ]]'
check "events: exactly $SEED1_GEAR_CHANGES gear changes and $SEED1_FAST_ENTRIES entries (got $events)" \
    '[[ $ev_gears == "$SEED1_GEAR_CHANGES" && $ev_fast == "$SEED1_FAST_ENTRIES" && $ev_total == $((ev_gears + ev_fast)) ]]'
check "records out = derived samples + events ($out_records)" \
    '[[ -n $out_records && $out_records == $((written + ev_total)) ]]'
check "one summary row per car and lap" \
    '[[ $(grep -cE "^car-0[1-3] +[12] " <<<"$out") == 6 ]]'
check "a best flying lap per car" '[[ $(grep -c "best flying lap: lap 2" <<<"$out") == 3 ]]'
table_events=$(awk '/^car-0[1-3] +[12] /{s += $7 + $8} END{print s}' <<<"$out")
check "the table's shifts and entries add up to the events ($table_events)" \
    '[[ $table_events == "$ev_total" ]]'
check "the summary says where the data is and how to look" \
    '[[ $out == *"The data is in $B"* && $out == *"rivulet consume -b $B -t demo-events"* ]]'

# Each topic holds what the summary reports, as JSON keyed by car.
check "demo-telemetry holds $written records" '[[ $(count demo-telemetry) == "$written" ]]'
check "demo-derived holds $written records" '[[ $(count demo-derived) == "$written" ]]'
check "demo-events holds $ev_total records" '[[ $(count demo-events) == "$ev_total" ]]'
check "demo-laps holds 6 summaries" '[[ $(count demo-laps) == 6 ]]'
first=$("$RIVULET" consume -b "$B" -t demo-telemetry -c 1 -e 2>/dev/null)
check "telemetry records are JSON samples" \
    '"$RIVULET" json -q <<<"$first" && grep -q "\"speed_kmh\":" <<<"$first"'
derived=$("$RIVULET" consume -b "$B" -t demo-derived -c 1 -e 2>/dev/null)
check "derived records carry the derived channels ($derived)" \
    '[[ $derived == *"\"speed_ms\":"* && $derived == *"\"wheel_slip_pct\":"* && $derived == *"\"brake_balance_pct\":"* ]]'
gear_events=$("$RIVULET" consume -b "$B" -t demo-events -e 2>/dev/null | grep -c '"type":"gear_change"')
check "demo-events holds $SEED1_GEAR_CHANGES gear changes (found $gear_events)" \
    '[[ $gear_events == "$SEED1_GEAR_CHANGES" ]]'
lap=$("$RIVULET" consume -b "$B" -t demo-laps -e -f '%k %s\n' 2>/dev/null | grep '^car-02 ' | head -1)
check "lap summaries are keyed by car ($lap)" '[[ $lap == *"\"car\":\"car-02\""*"\"time_s\":"* ]]'

# The same seed gives the same results; the table is the same line for line.
out_again=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 --seed 1 2>&1)
check "the same seed gives the same table" \
    '[[ "$(grep "^car-" <<<"$out")" == "$(grep "^car-" <<<"$out_again")" ]]'
check "a rerun replaces the topics (demo-events holds $ev_total)" \
    '[[ $(count demo-events) == "$ev_total" && $(count demo-telemetry) == "$written" ]]'
# Two workers share the partitions (each car's samples stay with one of them): same results.
out_two=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 -X app.threads=2 2>&1)
check "two worker threads give the same table ($(grep "^rivulet demo:" <<<"$out_two"))" \
    '[[ $out_two == *"2 worker threads"* && "$(grep "^car-" <<<"$out")" == "$(grep "^car-" <<<"$out_two")" ]]'

# --metrics=0: one final line of the application's counters on stderr, none on stdout.
timeout 120 "$RIVULET" demo -b "$B" --cars 1 --laps 1 --rate 20 --seed 7 --metrics=0 \
    >"$TMP/out2" 2>"$TMP/err2"
w2=$(sed -n 's/^wrote \([0-9]*\) samples.*/\1/p' "$TMP/out2")
check "another seed writes a fresh session (${w2:-none} samples, $(count demo-telemetry) stored)" \
    '[[ -n $w2 && $(count demo-telemetry) == "$w2" && $(count demo-laps) == 1 ]]'
check "--metrics=0 prints one final metrics line ($(cat "$TMP/err2"))" \
    '[[ $(grep -c "^rivulet demo: metrics " "$TMP/err2") == 1 ]] &&
     grep -q "^rivulet demo: metrics after .*: in $w2, out [0-9]*, .*errors 0 .*checkpoints [1-9]" "$TMP/err2" &&
     ! grep -q "^rivulet demo: metrics" "$TMP/out2"'
# --metrics=0.2 on a longer run prints periodic lines before the final one.
timeout 120 "$RIVULET" demo -b "$B" --cars 2 --laps 1 --rate 200 --metrics=0.05 \
    >/dev/null 2>"$TMP/err3"
check "--metrics=0.05 prints periodic lines and a final one" \
    '[[ $(grep -c "^rivulet demo: metrics at " "$TMP/err3") -ge 1 &&
        $(grep -c "^rivulet demo: metrics after " "$TMP/err3") == 1 ]]'

# Bad options name what was wrong.
err=$("$RIVULET" demo -b "$B" --cars 0 2>&1)
rc=$?
check "--cars 0 is a usage error naming the option" \
    '[[ $rc == 2 && $err == *"--cars needs a number from 1 to 20"* ]]'
err=$("$RIVULET" demo -b "$B" --seed x 2>&1)
rc=$?
check "--seed x is a usage error" '[[ $rc == 2 && $err == *"--seed needs a number"* ]]'
err=$("$RIVULET" demo -b "$B" --metrics=soon 2>&1)
rc=$?
check "--metrics=soon is a usage error" '[[ $rc == 2 && $err == *"--metrics takes a number of seconds"* ]]'
err=$("$RIVULET" demo -b "bogus:x" 2>&1)
rc=$?
check "a bad broker URL is reported" '[[ $rc == 1 && $err == *"bogus:x"* ]]'

echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
