#!/usr/bin/env bash
# test_demo.sh: `rivulet demo` (the main job behind `make demo`) on a fresh embedded log: it
# finishes, writes one telemetry stream per car (sessions, definitions, frames, gear-change
# events, lap markers) that `rivulet sessions`, `replay` and `consume --telemetry` read back,
# runs them through its application (derived channels, events, 1-second window summaries, lap
# summaries) with counts that add up across its five topics and match what the test recomputes
# from the raw data, gives the same results for the same seed and with two workers, prints the
# application's metrics on request, and rejects bad options with a clear message.
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
have_jq=0
command -v jq >/dev/null && have_jq=1

# The session of seed 1 with 3 cars, 2 laps at 50 Hz: these exact figures come from the
# simulation; a change to it must update them (and say why in the commit). A frame holds 100 ms
# of a car (5 samples at 50 Hz).
SEED1_SAMPLES=38742
SEED1_GEAR_CHANGES=365
SEED1_FAST_ENTRIES=30
SEED1_FRAMES=7750

out=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 2>"$TMP/err")
rc=$?
check "demo exits 0 (stderr: $(cat "$TMP/err"))" '[[ $rc == 0 ]]'
wrote=$(sed -n 's/^ *\([0-9]*\) records: \([0-9]*\) frames of \([0-9]*\) samples, \([0-9]*\) gear-change events, \([0-9]*\) lap markers$/\1 \2 \3 \4 \5/p' <<<"$out")
read -r records frames samples gear_events markers <<<"$wrote"
processed=$(sed -n 's/^processed \([0-9]*\) records (\([0-9]*\) samples).*/\1 \2/p' <<<"$out")
read -r processed_records processed_samples <<<"$processed"
out_records=$(sed -n 's/^ *\([0-9]*\) records out, 0 errors.*/\1/p' <<<"$out")
events=$(sed -n "s/.*'demo-events' \([0-9]*\): \([0-9]*\) gear changes and \([0-9]*\) entries.*/\1 \2 \3/p" <<<"$out")
read -r ev_total ev_gears ev_fast <<<"$events"
windows=$(sed -n "s/.*'demo-summary' \([0-9]*\) one-second summaries, 'demo-laps' \([0-9]*\) lap.*/\1 \2/p" <<<"$out")
read -r n_windows n_laps <<<"$windows"
check "the seeded session has exactly $SEED1_SAMPLES samples in $SEED1_FRAMES frames, $SEED1_GEAR_CHANGES gear changes, 6 laps ($wrote)" \
    '[[ $samples == "$SEED1_SAMPLES" && $frames == "$SEED1_FRAMES" && $gear_events == "$SEED1_GEAR_CHANGES" && $markers == 6 ]]'
check "the application processed every record and sample ($processed of $records, $samples)" \
    '[[ $processed_records == "$records" && $processed_samples == "$samples" ]]'
check "events: exactly $SEED1_GEAR_CHANGES gear changes and $SEED1_FAST_ENTRIES entries (got $events)" \
    '[[ $ev_gears == "$SEED1_GEAR_CHANGES" && $ev_fast == "$SEED1_FAST_ENTRIES" && $ev_total == $((ev_gears + ev_fast)) ]]'
check "records out = resampled rows (one per car and frame: 100 ms) + events + windows + laps ($out_records)" \
    '[[ -n $out_records && $out_records == $((frames + ev_total + n_windows + n_laps)) ]]'
check "one summary row per car and lap" \
    '[[ $(grep -cE "^car-0[1-3] +[12] " <<<"$out") == 6 && $n_laps == 6 ]]'
check "a best flying lap per car" '[[ $(grep -c "best flying lap: lap 2" <<<"$out") == 3 ]]'
table_events=$(awk '/^car-0[1-3] +[12] /{s += $7 + $8} END{print s}' <<<"$out")
check "the table's shifts and entries add up to the events ($table_events)" \
    '[[ $table_events == "$ev_total" ]]'
check "the summary says where the data is and how to look" \
    '[[ $out == *"The data is in $B"* && $out == *"rivulet sessions -b $B -t demo-telemetry"* &&
        $out == *"rivulet replay -b $B -t demo-telemetry -s car-01 --max --table"* &&
        $out == *"rivulet consume -b $B -t demo-telemetry --telemetry"* &&
        $out == *"rivulet consume -b $B -t demo-summary"* ]]'

# The sessions, as `rivulet sessions` lists them: three closed streams whose counts add up to
# what the demo wrote, and the same figures in the demo's own table.
sessions=$("$RIVULET" sessions -b "$B" -t demo-telemetry 2>&1)
# columns from the end: DURATION STATE RECORDS FRAMES ROWS EVENTS MARKERS BAD
sums=$(awk 'NR > 1 {n++; c += ($(NF-6) == "closed"); r += $(NF-5); f += $(NF-4); s += $(NF-3);
                    e += $(NF-2); m += $(NF-1); b += $NF}
            END {print n, c, r, f, s, e, m, b}' <<<"$sessions")
check "rivulet sessions lists 3 closed streams holding everything written ($sums)" \
    '[[ $sums == "3 3 $records $frames $samples $gear_events $markers 0" ]]'
for car in car-01 car-02 car-03; do
    theirs=$(awk -v c=$car '$1 == c {print $(NF-7), $(NF-5), $(NF-4), $(NF-3), $(NF-2), $(NF-1)}' <<<"$sessions")
    ours=$(awk -v c=$car '$1 == c && $0 ~ / closed / {print $(NF-6), $(NF-4), $(NF-3), $(NF-2), $(NF-1), $NF}' <<<"$out")
    check "the demo's sessions table agrees with rivulet sessions for $car ($ours / $theirs)" \
        '[[ -n $ours && $ours == "$theirs" ]]'
done

# Each topic holds what the summary reports.
check "demo-telemetry holds $records records" '[[ $(count demo-telemetry) == "$records" ]]'
check "demo-derived holds $frames records (10 Hz)" '[[ $(count demo-derived) == "$frames" ]]'
check "demo-events holds $ev_total records" '[[ $(count demo-events) == "$ev_total" ]]'
check "demo-summary holds $n_windows records" '[[ $(count demo-summary) == "$n_windows" ]]'
check "demo-laps holds 6 summaries" '[[ $(count demo-laps) == 6 ]]'
packets=$("$RIVULET" consume -b "$B" -t demo-telemetry --telemetry -e 2>/dev/null | grep -c '^car-0[1-3] ')
check "consume --telemetry decodes every packet ($packets)" '[[ $packets == "$records" ]]'
replayed=$("$RIVULET" replay -b "$B" -t demo-telemetry -s car-01 --max --table -q 2>&1 | grep -c '^car-01 frame: ')
check "replay --max --table gives every frame of car-01 ($replayed)" \
    '[[ $replayed == "$(awk '\''$1 == "car-01" {print $(NF-4)}'\'' <<<"$sessions")" ]]'
derived=$("$RIVULET" consume -b "$B" -t demo-derived -c 1 -e 2>/dev/null)
check "derived records carry the derived channels ($derived)" \
    '[[ $derived == *"\"speed_kmh\":"* && $derived == *"\"speed_ms\":"* && $derived == *"\"wheel_slip_pct\":"* && $derived == *"\"brake_balance_pct\":"* ]]'
t10=$("$RIVULET" consume -b "$B" -t demo-derived -e -f '%k %s\n' 2>/dev/null | grep '^car-02 ' |
    sed -n 10p | cut -d' ' -f2-)
check "derived records are 100 ms apart on the 10 Hz grid ($t10)" \
    '[[ $t10 =~ \"t_ns\":([0-9]+) && $(( ${BASH_REMATCH[1]} % 100000000 )) == 0 ]]'
gear_out=$("$RIVULET" consume -b "$B" -t demo-events -e 2>/dev/null | grep -c '"type":"gear_change"')
check "demo-events holds $SEED1_GEAR_CHANGES gear changes (found $gear_out)" \
    '[[ $gear_out == "$SEED1_GEAR_CHANGES" ]]'
lap=$("$RIVULET" consume -b "$B" -t demo-laps -e -f '%k %s\n' 2>/dev/null | grep '^car-02 ' | head -1)
check "lap summaries are keyed by car ($lap)" '[[ $lap == *"\"car\":\"car-02\""*"\"time_s\":"* ]]'

# One-second windows: per car, as many as the session lasts in seconds (rounded up: the session
# starts on a whole second), each with samples = rate x 1 s except the last.
for car in car-01 car-02 car-03; do
    dur=$(awk -v c=$car '$1 == c {d = $(NF-7); sub(/s$/, "", d); print d}' <<<"$sessions")
    want=$(awk -v d="$dur" 'BEGIN {n = int(d); if (n < d) n++; print n}')
    got=$("$RIVULET" consume -b "$B" -t demo-summary -e -f '%k\n' 2>/dev/null | grep -c "^$car\$")
    full=$("$RIVULET" consume -b "$B" -t demo-summary -e -f '%k %s\n' 2>/dev/null |
        grep "^$car " | grep -c '"samples":50}')
    check "$car has $want one-second summaries (a session of ${dur} s; got $got, $full full)" \
        '[[ $got == "$want" && $full -ge $((want - 1)) ]]'
done
if ((have_jq)); then
    # A window's figures recomputed from the raw frames read back from demo-telemetry.
    win=$("$RIVULET" consume -b "$B" -t demo-summary -e -J 2>/dev/null |
        jq -r 'select(.key == "car-02") | .value | fromjson |
               "\(.start) \(.end) \(.mean_kmh) \(.max_kmh) \(.max_rpm) \(.samples)"' | sed -n 10p)
    read -r w_start w_end w_mean w_max w_rpm w_n <<<"$win"
    raw=$("$RIVULET" consume -b "$B" -t demo-telemetry --telemetry -J -e 2>/dev/null |
        jq -rs --argjson s "${w_start:-0}" --argjson e "${w_end:-0}" '
            [.[] | select(.type == "frame" and .stream_id == "car-02") | .rows[] |
             select((.time / 1000000 | floor) >= $s and (.time / 1000000 | floor) < $e) | .values]
            | "\(map(.speed_kmh) | add / length) \(map(.speed_kmh) | max) \(map(.rpm) | max) \(length)"')
    read -r r_mean r_max r_rpm r_n <<<"$raw"
    check "car-02's 10th window ($win) matches the raw samples ($raw)" \
        '[[ -n $w_n && $w_n == "$r_n" && $w_max == "$r_max" && $w_rpm == "$r_rpm" ]] &&
         awk -v a="$w_mean" -v b="$r_mean" '\''BEGIN {d = a - b; exit !(d < 1e-9 && d > -1e-9)}'\'''
    # A resampled row: the mean of the raw samples of its 100 ms (rounded to 1/1000 km/h), the
    # highest rpm and the last gear.
    read -r d_t d_speed d_rpm d_gear <<<"$(jq -r '"\(.t_ns) \(.speed_kmh) \(.rpm) \(.gear)"' <<<"$t10")"
    raw10=$("$RIVULET" consume -b "$B" -t demo-telemetry --telemetry -J -e 2>/dev/null |
        jq -rs --argjson t "$((d_t / 1000000))" '
            [.[] | select(.type == "frame" and .stream_id == "car-02") | .rows[] |
             select((.time / 1000000 | floor) >= $t and (.time / 1000000 | floor) < $t + 100) | .values]
            | "\((map(.speed_kmh) | add / length) * 1000 | round / 1000) \(map(.rpm) | max) \(.[-1].gear)"')
    check "car-02's 10th resampled row ($d_speed $d_rpm $d_gear) matches the raw samples ($raw10)" \
        '[[ "$d_speed $d_rpm $d_gear" == "$raw10" ]]'
    # The gear changes the pipeline found are the events each stream carries.
    stream_gears=$("$RIVULET" consume -b "$B" -t demo-telemetry --telemetry -J -e 2>/dev/null |
        jq -s '[.[] | select(.type == "events") | .events[] | select(.id == "gear_change")] | length')
    check "the streams carry $SEED1_GEAR_CHANGES gear-change events ($stream_gears)" \
        '[[ $stream_gears == "$SEED1_GEAR_CHANGES" ]]'
fi

# The same seed gives the same results; the tables are the same line for line.
out_again=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 --seed 1 2>&1)
check "the same seed gives the same tables" \
    '[[ "$(grep "^ *car-" <<<"$out")" == "$(grep "^ *car-" <<<"$out_again")" ]]'
check "a rerun replaces the topics and the window state (demo-events $ev_total, demo-summary $n_windows)" \
    '[[ $(count demo-events) == "$ev_total" && $(count demo-telemetry) == "$records" &&
        $(count demo-summary) == "$n_windows" ]]'
# Two workers share the partitions (each car's records stay with one of them): same results.
out_two=$(timeout 120 "$RIVULET" demo -b "$B" --cars 3 --laps 2 --rate 50 -X app.threads=2 2>&1)
check "two worker threads give the same tables ($(grep "^rivulet demo:" <<<"$out_two"))" \
    '[[ $out_two == *"2 worker threads"* && "$(grep "^ *car-" <<<"$out")" == "$(grep "^ *car-" <<<"$out_two")" ]]'

# --metrics=0: one final line of the application's counters on stderr, none on stdout.
timeout 120 "$RIVULET" demo -b "$B" --cars 1 --laps 1 --rate 20 --seed 7 --metrics=0 \
    >"$TMP/out2" 2>"$TMP/err2"
r2=$(sed -n 's/^ *\([0-9]*\) records: .*/\1/p' "$TMP/out2")
check "another seed writes a fresh session (${r2:-none} records, $(count demo-telemetry) stored)" \
    '[[ -n $r2 && $(count demo-telemetry) == "$r2" && $(count demo-laps) == 1 ]]'
check "--metrics=0 prints one final metrics line ($(cat "$TMP/err2"))" \
    '[[ $(grep -c "^rivulet demo: metrics " "$TMP/err2") == 1 ]] &&
     grep -q "^rivulet demo: metrics after .*: in $r2, out [0-9]*, .*errors 0 .*checkpoints [1-9]" "$TMP/err2" &&
     ! grep -q "^rivulet demo: metrics" "$TMP/out2"'
# --metrics=0.05 on a longer run prints periodic lines before the final one.
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
err=$("$RIVULET" demo -b "$B" --rate 5 2>&1)
rc=$?
check "--rate 5 is a usage error (below the 10 Hz channels)" \
    '[[ $rc == 2 && $err == *"--rate needs a number from 10 to 1000"* ]]'
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
