#!/usr/bin/env bash
# test_telemetry.sh: the telemetry commands on the embedded log, with exact expected output:
# `rivulet record` from CSV files (ISO 8601, ns and seconds time columns, quoted cells, empty
# cells, --time-col), `rivulet sessions` (the catalogue table, -f following a new session),
# `rivulet consume --telemetry` (tables, and JSON lines with -J, a bad record reported and
# skipped), `rivulet replay` (JSON lines, a time range, --max, pacing, into another topic) and
# the errors (a missing file, a bad time naming file and line, an unknown stream).
#
# usage: bash test_telemetry.sh PATH_TO_RIVULET SOURCE_DIR
set -u
RIVULET=${1:?usage: test_telemetry.sh PATH_TO_RIVULET SOURCE_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
export RIVULET_BROKER="local:$TMP/data"
pass=0
fail=0

rv() { timeout 60 "$RIVULET" "$@"; }

# run CMD...: runs a command, keeping its stdout in OUT, stderr in ERR and status in RC.
run() {
    OUT=$("$@" 2>"$TMP/stderr")
    RC=$?
    ERR=$(cat "$TMP/stderr")
}

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    printf 'FAIL: %s\n' "$*" >&2
}

# expect NAME RC STDOUT: the last run exited RC and printed exactly STDOUT.
expect() {
    if [[ $RC == "$2" && $OUT == "$3" ]]; then
        ok
    else
        bad "$1: status $RC (want $2)"
        diff <(printf '%s\n' "$3") <(printf '%s\n' "$OUT") >&2
        printf 'stderr: %s\n' "$ERR" >&2
    fi
}

# expect_err NAME RC STDERR: the last run exited RC, printed nothing and exactly STDERR on stderr.
expect_err() {
    if [[ $RC == "$2" && -z $OUT && $ERR == "$3" ]]; then
        ok
    else
        bad "$1: status $RC (want $2)"
        diff <(printf '%s\n' "$3") <(printf '%s\n' "$ERR") >&2
    fi
}

rv topics create tele -p 1 >/dev/null
rv topics create copy -p 1 >/dev/null

# ---- record ----
cat >lap.csv <<'CSV'
time,speed,gear,driver
2025-11-23T12:00:00Z,100.5,3,ann
2025-11-23T12:00:00.100Z,101,3,
2025-11-23T12:00:00.200Z,,4,"b, c"
2025-11-23T12:00:00.300Z,103.25,4,bob
CSV
run rv record -t tele --csv lap.csv --rows-per-frame 2 --name "Lap one"
expect "record lap.csv" 0 "recorded 4 rows (2 frames, 3 parameters) from lap.csv as stream 'lap' in topic 'tele'"

# ns in a column named t, CRLF line ends, a stream id and name given.
printf 'a,t,b\r\n1.5,1763899201000000000,x\r\n2.5,1763899201500000000,"say ""hi"""\r\n' >ns.csv
run rv record -t tele --csv ns.csv --time-col t --stream rig-2 -q
expect "record ns.csv" 0 ""

# ---- sessions ----
run rv sessions -t tele
expect "sessions" 0 "STREAM  NAME     START                     END                       DURATION  STATE   RECORDS  FRAMES  ROWS  EVENTS  MARKERS  BAD
lap     Lap one  2025-11-23T12:00:00.000Z  2025-11-23T12:00:00.300Z    0.300s  closed        8       2     4       0        0    0
rig-2   rig-2    2025-11-23T12:00:01.000Z  2025-11-23T12:00:01.500Z    0.500s  closed        7       1     2       0        0    0"

# ---- consume --telemetry ----
run rv consume -t tele -e -q --telemetry -c 8
expect "consume --telemetry" 0 'lap stream_properties: {"version":1,"type":"stream_properties","stream_id":"lap","name":"Lap one","metadata":{},"parents":[],"time_of_recording":1763899200000000000}
lap session_start: {"version":1,"type":"session_start","stream_id":"lap","session_id":"lap","identifier":"Lap one","session_version":0,"details":{},"start_time":1763899200000000000}
lap parameter_definitions: {"version":1,"type":"parameter_definitions","stream_id":"lap","parameters":[{"id":"speed","name":"speed"},{"id":"gear","name":"gear"},{"id":"driver","name":"driver"}]}
lap data_format: {"version":1,"type":"data_format","stream_id":"lap","format_id":1,"parameter_ids":["speed","gear","driver"]}
lap frame: 2 rows, format 1
time                      speed  gear  driver
2025-11-23T12:00:00.000Z  100.5     3  ann
2025-11-23T12:00:00.100Z    101     3  -
lap frame: 2 rows, format 1
time                       speed  gear  driver
2025-11-23T12:00:00.200Z       -     4  b, c
2025-11-23T12:00:00.300Z  103.25     4  bob
lap session_end: {"version":1,"type":"session_end","stream_id":"lap","session_id":"lap","end_time":1763899200300000000}
lap stream_end: {"version":1,"type":"stream_end","stream_id":"lap","end":"closed"}'

# From the data format on: the frame leaves its column names to the format (docs/telemetry.md).
run rv consume -t tele -e -q --telemetry -J -o 11 -c 2
expect "consume --telemetry -J" 0 '{"version":1,"type":"data_format","stream_id":"rig-2","format_id":1,"parameter_ids":["a","b"]}
{"version":1,"type":"frame","stream_id":"rig-2","format_id":1,"columns":[{"name":"a","type":"double"},{"name":"b","type":"string"}],"rows":[{"time":1763899201000000000,"values":{"a":1.5,"b":"x"}},{"time":1763899201500000000,"values":{"a":2.5,"b":"say \"hi\""}}]}'

# ---- replay ----
run rv replay -t tele -s lap --max --from 2025-11-23T12:00:00.1Z --to 1763899200.3 -q
expect "replay a range" 0 '{"version":1,"type":"stream_properties","stream_id":"lap","name":"Lap one","metadata":{},"parents":[],"time_of_recording":1763899200000000000}
{"version":1,"type":"session_start","stream_id":"lap","session_id":"lap","identifier":"Lap one","session_version":0,"details":{},"start_time":1763899200000000000}
{"version":1,"type":"parameter_definitions","stream_id":"lap","parameters":[{"id":"speed","name":"speed"},{"id":"gear","name":"gear"},{"id":"driver","name":"driver"}]}
{"version":1,"type":"data_format","stream_id":"lap","format_id":1,"parameter_ids":["speed","gear","driver"]}
{"version":1,"type":"frame","stream_id":"lap","format_id":1,"columns":[{"name":"speed","type":"double"},{"name":"gear","type":"double"},{"name":"driver","type":"string"}],"rows":[{"time":1763899200100000000,"values":{"speed":101.0,"gear":3.0}}]}
{"version":1,"type":"frame","stream_id":"lap","format_id":1,"columns":[{"name":"speed","type":"double"},{"name":"gear","type":"double"},{"name":"driver","type":"string"}],"rows":[{"time":1763899200200000000,"values":{"gear":4.0,"driver":"b, c"}}]}
{"version":1,"type":"session_end","stream_id":"lap","session_id":"lap","end_time":1763899200300000000}
{"version":1,"type":"stream_end","stream_id":"lap","end":"closed"}'

# Paced: 0.2 s between the two frames at speed 1 (the range cut nothing here).
start=$(date +%s%N)
run rv replay -t tele -s lap -o copy
took=$((($(date +%s%N) - start) / 1000000))
expect "replay -o" 0 ""
if [[ $ERR == "rivulet replay: 8 packets of stream 'lap' in 0.2"*" s (0 outside the range, 0 bad)" && $took -ge 200 ]]; then
    ok
else
    bad "replay pacing: $ERR (took $took ms)"
fi
run rv sessions -t copy
expect "sessions of the copy" 0 "STREAM  NAME     START                     END                       DURATION  STATE   RECORDS  FRAMES  ROWS  EVENTS  MARKERS  BAD
lap     Lap one  2025-11-23T12:00:00.000Z  2025-11-23T12:00:00.300Z    0.300s  closed        8       2     4       0        0    0"

# ---- sessions -f: a session recorded while following shows up ----
"$RIVULET" sessions -t tele -f >follow.out 2>follow.err &
pid=$!
sleep 0.5
printf 'time,x\n10.0,1\n10.5,2\n' >late.csv
rv record -t tele --csv late.csv -q
sleep 0.5
kill -INT "$pid"
wait "$pid"
RC=$?
OUT=$(tail -n 1 follow.out)
ERR=$(cat follow.err)
expect "sessions -f" 0 "late: closed, name late, start 1970-01-01T00:00:10.000Z, end 1970-01-01T00:00:10.500Z, duration 0.500s, records 7, frames 1, rows 2, events 0, markers 0, bad 0"

# ---- bad records: reported and skipped ----
# lap's records are offsets 0-7, rig-2's 8-14, late's 15-21: the bad one is 22.
printf 'lap:junk\n' | rv produce -t tele -K : >/dev/null
run rv consume -t tele -e -q --telemetry -o 22
expect "bad record" 0 ""
if [[ $ERR == "rivulet consume: topic 'tele' partition 0 offset 22 key 'lap': telemetry"* ]]; then ok; else
    bad "bad record message: $ERR"
fi
run rv sessions -t tele
if [[ $RC == 0 && $OUT == *"lap     Lap one  2025-11-23T12:00:00.000Z  2025-11-23T12:00:00.300Z    0.300s  closed        9       2     4       0        0    1"* ]]; then ok; else
    bad "sessions counts a bad record: $OUT"
fi

# ---- errors ----
run rv record -t tele --csv missing.csv
expect_err "missing file" 1 "rivulet record: cannot open 'missing.csv': No such file or directory"
printf 'time,x\n2025-11-23T12:00:00Z,1\nnoon,2\n' >badtime.csv
run rv record -t tele --csv badtime.csv
expect_err "bad time" 1 "rivulet record: badtime.csv:3: column 1 ('time'): 'noon' is not a time (ns since the epoch, seconds with a decimal point, or ISO 8601)"
printf 'time,x\n1.0,1,2\n' >badrow.csv
run rv record -t tele --csv badrow.csv
expect_err "bad row" 1 "rivulet record: badrow.csv:2: 3 cells, the header has 2"
run rv replay -t tele -s nope --max
expect_err "unknown stream" 1 "rivulet replay: telemetry replay: topic 'tele' has no record of stream 'nope'"
run rv replay -t tele -s lap --max --speed 2
expect_err "--max and --speed" 2 "rivulet replay: --speed and --max exclude each other"
run rv sessions -t nothing
if [[ $RC == 1 && $ERR == "rivulet sessions: "*"nothing"* ]]; then ok; else bad "sessions of no topic: $RC $ERR"; fi
for cmd in sessions replay record; do
    run rv "$cmd" --help
    if [[ $RC == 0 && $OUT == "usage: rivulet $cmd"* && -z $ERR ]]; then ok; else
        bad "$cmd --help: status $RC"
    fi
done

printf '%d passed, %d failed\n' "$pass" "$fail"
((fail == 0))
