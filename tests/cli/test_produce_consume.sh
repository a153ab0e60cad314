#!/usr/bin/env bash
# test_produce_consume.sh: `rivulet produce` and `rivulet consume` on the embedded log, with
# exact expected output: lines with keys (-K), headers (-H), timestamps (-T), \r\n, NULLs (-Z),
# custom delimiters; murmur2 key placement checked against a murmur2 computed here (itself
# checked against Kafka's vectors); -o with offsets, -N, @timestamp, end; -c; -f and its
# escapes; -J read back by `rivulet json`; -l with binary files compared byte for byte;
# consumer groups resuming from committed offsets (also after SIGTERM); and the errors.
#
# usage: bash test_produce_consume.sh PATH_TO_RIVULET SOURCE_DIR
set -u
RIVULET=${1:?usage: test_produce_consume.sh PATH_TO_RIVULET SOURCE_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
B="local:$TMP/data"
export RIVULET_BROKER=$B
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

# expect_err_has NAME RC PREFIX WORD...: the last run exited RC, printed nothing on stdout, and
# its stderr starts with PREFIX and contains every WORD.
expect_err_has() {
    local name=$1 rc=$2 prefix=$3 w good=1
    shift 3
    [[ $RC == "$rc" && -z $OUT && $ERR == "$prefix"* ]] || good=0
    for w in "$@"; do
        [[ $ERR == *"$w"* ]] || good=0
    done
    if ((good)); then
        ok
    else
        bad "$name: status $RC (want $rc), stderr '$ERR' should start with '$prefix' and name: $*"
    fi
}

# Kafka's murmur2 (seed 0x9747b28c) of an ASCII string, as a signed 32-bit number.
murmur2() {
    local s=$1 len=${#1} m=$((0x5bd1e995)) M=$((0xffffffff)) i k h
    local -a b=()
    for ((i = 0; i < len; i++)); do
        printf -v 'b[i]' '%d' "'${s:i:1}"
    done
    h=$(((0x9747b28c ^ len) & M))
    for ((i = 0; i + 4 <= len; i += 4)); do
        k=$((b[i] | b[i + 1] << 8 | b[i + 2] << 16 | b[i + 3] << 24))
        k=$((k * m & M))
        k=$((k ^ k >> 24))
        k=$((k * m & M))
        h=$(((h * m & M) ^ k))
    done
    local t=$((len & ~3))
    case $((len % 4)) in
        3) h=$((h ^ b[t + 2] << 16 ^ b[t + 1] << 8 ^ b[t])) && h=$((h * m & M)) ;;
        2) h=$((h ^ b[t + 1] << 8 ^ b[t])) && h=$((h * m & M)) ;;
        1) h=$((h ^ b[t])) && h=$((h * m & M)) ;;
    esac
    h=$((h ^ h >> 13))
    h=$((h * m & M))
    h=$((h ^ h >> 15))
    ((h >= 1 << 31)) && h=$((h - (1 << 32)))
    echo "$h"
}

# The partition Kafka's default partitioner gives KEY among N partitions.
partition_of() { echo $((($(murmur2 "$1") & 0x7fffffff) % $2)); }

for v in "21 -973932308" "foobar -790332482" "a-little-bit-long-string -985981536" \
    "a-little-bit-longer-string -1486304829" \
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8 -58897971" "abc 479470107"; do
    got=$(murmur2 "${v% *}")
    if [[ $got == "${v#* }" ]]; then ok; else bad "murmur2(${v% *}) = $got, want ${v#* }"; fi
done

rv topics create lines >/dev/null
rv topics create keyed -p 3 >/dev/null
rv topics create times >/dev/null
rv topics create blobs >/dev/null
rv topics create jsonl >/dev/null
rv topics create grouped >/dev/null
rv topics create grouped3 -p 3 >/dev/null
rv topics create misc >/dev/null

# ---- lines, keys, headers, timestamps, \r\n ----
run rv produce -t lines -K : -H h1=a -H 'h2=b=c' -H flag -T 1000 \
    < <(printf 'k1:v1\nk2:v2\r\nnokey\n:emptykey\nk5:\n\nk7:x:y\nlast:no newline')
expect "produce lines" 0 ""

run rv consume -t lines -e -q -f '%t %p %o %k|%s|%K|%S|%T|%h\n'
expect "consume with -f" 0 "lines 0 0 k1|v1|2|2|1000|h1=a,h2=b=c,flag
lines 0 1 k2|v2|2|2|1000|h1=a,h2=b=c,flag
lines 0 2 |nokey|-1|5|1000|h1=a,h2=b=c,flag
lines 0 3 |emptykey|0|8|1000|h1=a,h2=b=c,flag
lines 0 4 k5||2|0|1000|h1=a,h2=b=c,flag
lines 0 5 ||-1|0|1000|h1=a,h2=b=c,flag
lines 0 6 k7|x:y|2|3|1000|h1=a,h2=b=c,flag
lines 0 7 last|no newline|4|10|1000|h1=a,h2=b=c,flag"

run rv consume -t lines -e -q
expect "default format is the value and a newline" 0 "v1
v2
nokey
emptykey


x:y
no newline"

run rv consume -t lines -e -q -K '\t' -D '\n--\n' -Z
expect "-K, -D and -Z on output" 0 "k1	v1
--
k2	v2
--
NULL	nokey
--
	emptykey
--
k5	
--
NULL	
--
k7	x:y
--
last	no newline
--"

run rv consume -t lines -e -q -f '%%o=%o\t\\ %k\x21\n' -c 2
expect "-f escapes and %%" 0 "%o=0	\\ k1!
%o=1	\\ k2!"

run rv consume -t lines -e
if [[ $RC == 0 && $ERR == "rivulet consume: reached the end of topic 'lines' partition 0 at offset 8" ]]; then
    ok
else
    bad "without -q the end of a partition is reported: status $RC, stderr '$ERR'"
fi

# -Z sends empty keys and values as NULL (tombstones); -D splits records differently.
run rv produce -t misc -K = -Z < <(printf 'gone=\n=novalue\nkept=1\n')
run rv consume -t misc -e -q -Z -f '%k %s %K %S\n'
expect "-Z produces NULL keys and values" 0 "gone NULL 4 -1
NULL novalue -1 7
kept 1 4 1"

run rv produce -t misc -D ';;' < <(printf 'a;b;;c\nd;;;;e')
run rv consume -t misc -e -q -o 3 -f '[%s]\n'
expect "-D splits at a multi-byte delimiter (no \\r\\n handling)" 0 "[a;b]
[c
d]
[]
[e]"

# A long line (larger than the read buffer) arrives whole.
head -c 300000 /dev/zero | tr '\0' 'x' >"$TMP/long"
printf '\nshort\n' >>"$TMP/long"
run rv produce -t misc <"$TMP/long"
run rv consume -t misc -e -q -o 7 -f '%S %o\n'
expect "a 300000-byte line" 0 "300000 7
5 8"

# ---- keys land on partitions by murmur2 ----
keys=(alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike 21 foobar abc)
for k in "${keys[@]}"; do printf '%s:value-of-%s\n' "$k" "$k"; done >"$TMP/keyed"
run rv produce -t keyed -K : -v <"$TMP/keyed"
bytes=0
declare -A used=()
for k in "${keys[@]}"; do
    bytes=$((bytes + ${#k} + 9 + ${#k}))
    used[$(partition_of "$k" 3)]=1
done
parts=$(printf '%s\n' "${!used[@]}" | sort -n | paste -sd,)
[[ $parts == 0,1,2 ]] && parts=0-2
expect_err "produce -v prints a summary" 0 \
    "rivulet produce: ${#keys[@]} records ($bytes bytes) stored in topic 'keyed' partitions $parts"
for p in 0 1 2; do
    want=$(for k in "${keys[@]}"; do
        [[ $(partition_of "$k" 3) == "$p" ]] && printf '%s=value-of-%s\n' "$k" "$k"
    done)
    run rv consume -t keyed -p "$p" -e -q -f '%k=%s\n'
    expect "partition $p holds the keys murmur2 puts there" 0 "$want"
done

run rv consume -t keyed -e -q -f '%k\n'
if [[ $RC == 0 && $(sort <<<"$OUT") == $(printf '%s\n' "${keys[@]}" | sort) ]]; then ok; else
    bad "consume without -p reads every partition: status $RC"
fi

run rv produce -t keyed -p 2 -k fixed < <(printf 'one\ntwo\n')
run rv consume -t keyed -p 2 -o -2 -e -q -f '%p %k %s\n'
expect "-p and -k" 0 "2 fixed one
2 fixed two"

# ---- -o: offsets, -N, @timestamp, end; -c ----
for ts in 1000 2000 3000; do
    rv produce -t times -T "$ts" < <(printf 't%s-a\nt%s-b\n' "$ts" "$ts")
done
run rv consume -t times -e -q -o 3 -f '%o %T %s\n'
expect "-o OFFSET" 0 "3 2000 t2000-b
4 3000 t3000-a
5 3000 t3000-b"

run rv consume -t times -e -q -o -2 -f '%o %s\n'
expect "-o -N: the last N" 0 "4 t3000-a
5 t3000-b"

run rv consume -t times -e -q -o -100 -f '%o\n'
expect "-o -N beyond the start" 0 "0
1
2
3
4
5"

run rv consume -t times -e -q -o @2000 -f '%o %T\n'
expect "-o @TIMESTAMP" 0 "2 2000
3 2000
4 3000
5 3000"

run rv consume -t times -e -q -o @2500 -f '%o %T\n'
expect "-o @TIMESTAMP between records" 0 "4 3000
5 3000"

run rv consume -t times -e -q -o @9000
expect "-o @TIMESTAMP after the last record" 0 ""

run rv consume -t times -e -q -o end
expect "-o end" 0 ""

run rv consume -t times -e -q -o beginning -c 3
expect "-c 3" 0 "t1000-a
t1000-b
t2000-a"

run rv consume -t times -c 2 -q -o 5 -e
expect "-c with fewer records left than COUNT" 0 "t3000-b"

run rv consume -t times -t lines -e -q -c 100 -f '%t\n'
if [[ $RC == 0 && $(sort <<<"$OUT" | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ') == "lines=8 times=6" ]]; then
    ok
else
    bad "two -t topics: status $RC, output $OUT"
fi

# ---- -J ----
rv produce -t jsonl -K '|' -H 'h=x' -H 'quote="q"' -T 5000 \
    < <(printf 'k|v "w"\n\xff\xfe|\xe2\x82\xac\nplain\n')
rv produce -t jsonl -Z < <(printf '\n')
run rv consume -t jsonl -e -q -J
expect "-J" 0 '{"topic":"jsonl","partition":0,"offset":0,"timestamp":5000,"key":"k","value":"v \"w\"","headers":{"h":"x","quote":"\"q\""}}
{"topic":"jsonl","partition":0,"offset":1,"timestamp":5000,"key":"//4=","key_encoding":"base64","value":"€","headers":{"h":"x","quote":"\"q\""}}
{"topic":"jsonl","partition":0,"offset":2,"timestamp":5000,"key":null,"value":"plain","headers":{"h":"x","quote":"\"q\""}}'"
"'{"topic":"jsonl","partition":0,"offset":3,"timestamp":'"$(rv consume -t jsonl -q -o 3 -c 1 -f %T)"',"key":null,"value":null,"headers":{}}'
json_out=$OUT
run rv json --lines < <(printf '%s\n' "$json_out")
expect "-J output reads back with rivulet json" 0 "$json_out"

# ---- -l: files as values, byte for byte ----
head -c 200000 /dev/urandom >"$TMP/blob1"
printf 'a\0b\r\n\n' >"$TMP/blob2"
: >"$TMP/empty"
run rv produce -t blobs -l -k file "$TMP/blob1" "$TMP/blob2" "$TMP/empty"
expect "produce -l" 0 ""
run rv consume -t blobs -e -q -f '%k %S\n'
expect "-l makes one record per file" 0 "file 200000
file 6
file 0"
for i in 1 2; do
    rv consume -t blobs -q -o $((i - 1)) -c 1 -f '%s' >"$TMP/back$i"
    if cmp -s "$TMP/blob$i" "$TMP/back$i"; then ok; else bad "blob$i does not round-trip"; fi
done
run rv produce -t blobs -l < "$TMP/blob2"
rv consume -t blobs -q -o 3 -c 1 -f '%s' >"$TMP/back3"
if cmp -s "$TMP/blob2" "$TMP/back3"; then ok; else bad "-l from stdin does not round-trip"; fi

# ---- consumer groups ----
seq -f 'v%g' 0 9 | rv produce -t grouped
run rv consume -t grouped -g G -o beginning -c 5 -q
expect "group: the first 5" 0 "$(seq -f 'v%g' 0 4)"
run rv consume -t grouped -g G -e -q
expect "group: the other 5 from the committed offset" 0 "$(seq -f 'v%g' 5 9)"
run rv consume -t grouped -g G -e -q
expect "group: nothing left" 0 ""
run rv consume -t grouped -g OTHER -o beginning -e -q -c 3
expect "another group starts on its own" 0 "v0
v1
v2"
run rv consume -t grouped -g NEW -o end -e -q
expect "a new group with -o end" 0 ""

seq -f 'w%g' 0 29 | rv produce -t grouped3 -K ,
{
    rv consume -t grouped3 -g G3 -o beginning -c 12 -q
    # -o beginning for the partitions the first member never reached (never committed)
    rv consume -t grouped3 -g G3 -o beginning -e -q
} >"$TMP/g3"
if [[ $(sort "$TMP/g3") == $(seq -f 'w%g' 0 29 | sort) ]]; then ok; else
    bad "group over 3 partitions: every record exactly once"
fi

# SIGTERM: the group commits what it printed.
seq -f 's%g' 0 9 | rv produce -t grouped
"$RIVULET" consume -t grouped -g SIG -o beginning -q -f '%s\n' >"$TMP/sig" 2>"$TMP/sig.err" &
pid=$!
for _ in $(seq 100); do
    [[ $(wc -l <"$TMP/sig") -ge 20 ]] && break
    sleep 0.1
done
kill -TERM "$pid"
wait "$pid"
rc=$?
if [[ $rc == 0 && $(wc -l <"$TMP/sig") == 20 ]]; then ok; else
    bad "consume -g stops cleanly on SIGTERM: status $rc, $(wc -l <"$TMP/sig") lines"
fi
seq -f 'z%g' 0 1 | rv produce -t grouped
run rv consume -t grouped -g SIG -e -q
expect "after SIGTERM the group resumes where it stopped" 0 "z0
z1"

# ---- errors ----
run rv produce -t nosuch < <(printf 'x\n')
expect_err_has "produce to a missing topic" 1 "rivulet produce: " "nosuch"

run rv consume -t nosuch -e
expect_err_has "consume a missing topic" 1 "rivulet consume: " "nosuch"

run rv consume -t nosuch -g G -e
expect_err_has "consume a missing topic in a group" 1 "rivulet consume: " "nosuch"

run rv produce -t keyed -p 3 < <(printf 'x\n')
expect_err "produce -p out of range" 1 \
    "rivulet produce: -p 3: topic 'keyed' has 3 partitions (0..2)"

run rv consume -t keyed -p 5 -e
expect_err "consume -p out of range" 1 \
    "rivulet consume: -p 5: topic 'keyed' has 3 partitions (0..2)"

run rv produce -t misc "$TMP/does-not-exist"
expect_err "produce from a missing file" 1 \
    "rivulet produce: $TMP/does-not-exist: cannot open: No such file or directory"

head -c 2000000 /dev/zero | tr '\0' 'y' >"$TMP/huge"
# With splitting off (and its threshold above the record) the topic's max.message.bytes refuses it.
run rv produce -t misc -l -X message.split=false -X message.split.bytes=4000000 "$TMP/huge"
ERR=${ERR##*$'\n'} # the library may log a warning first; the CLI's error comes last
expect_err_has "a record larger than the topic accepts" 1 "rivulet produce: $TMP/huge: " "misc"
# By default it is sent as chunk records and read back whole, at the first chunk's offset.
rv topics create huge >/dev/null
run rv produce -t huge -l "$TMP/huge"
expect "a record larger than the topic accepts, split" 0 ""
run rv consume -t huge -e -q -f '%o %S\n'
expect "a split record read back" 0 "0 2000000"
rv consume -t huge -e -q -D '' >"$TMP/huge.out"
if cmp -s "$TMP/huge" "$TMP/huge.out"; then ok; else bad "a split record read back byte for byte"; fi

run rv produce < <(printf 'x\n')
expect_err "produce without -t" 2 "rivulet produce: -t TOPIC is required"

run rv produce -t misc -K ''
expect_err "produce with an empty -K" 2 "rivulet produce: -K needs a non-empty delimiter"

run rv produce -t misc -K '\q'
expect_err "produce with a bad escape" 2 \
    "rivulet produce: -K '\\q': unknown escape '\\q' (known: \\n \\r \\t \\0 \\\\ \\xHH)"

run rv produce -t misc -T yesterday
expect_err "produce with a bad -T" 2 \
    "rivulet produce: -T needs a timestamp in milliseconds since the epoch, got 'yesterday'"

run rv produce -t misc -H =v
expect_err "produce with a nameless header" 2 \
    "rivulet produce: -H '=v': the header needs a name (name=value)"

run rv consume -e
expect_err "consume without -t" 2 "rivulet consume: -t TOPIC is required"

run rv consume -t lines -o sometime
expect_err "consume with a bad -o" 2 \
    "rivulet consume: -o takes beginning, end, stored, an offset, -N (N records before the end) or @TIMESTAMP_MS; got 'sometime'"

run rv consume -t lines -o stored
expect_err "-o stored without a group" 2 "rivulet consume: -o stored needs a group (-g GROUP)"

run rv consume -t lines -g G -o 5
expect_err "-o OFFSET with a group" 2 \
    "rivulet consume: with -g, -o takes beginning, end or stored (where to start when the group has no committed offset)"

run rv consume -t lines -f '%s %x'
expect_err "consume with an unknown field" 2 \
    "rivulet consume: -f '%s %x': unknown field '%x' (known: %t %p %o %k %s %K %S %T %h %%)"

run rv consume -t lines -c 0
expect_err "consume -c 0" 2 "rivulet consume: -c needs a record count (1 or more), got '0'"

run rv consume -t lines -X auto.offset.reset=sometimes
expect_err_has "consume with a bad -X" 2 "rivulet consume: " "auto.offset.reset" "sometimes" \
    "earliest"

run rv consume -t lines -w
expect_err "consume with an unknown option" 2 "rivulet consume: unknown option '-w'
try 'rivulet consume --help'"

for cmd in produce consume; do
    run rv "$cmd" --help
    if [[ $RC == 0 && $OUT == "usage: rivulet $cmd"* && -z $ERR ]]; then ok; else
        bad "$cmd --help: status $RC"
    fi
done

# ---- volume: many lines, written fast and read back whole ----
rv topics create bulk -p 2 >/dev/null
seq 1 200000 >"$TMP/bulk"
run rv produce -t bulk -K 0 <"$TMP/bulk"
rv consume -t bulk -e -q >"$TMP/bulk.out"
if [[ $(wc -l <"$TMP/bulk.out") == 200000 ]]; then ok; else
    bad "200000 lines: got $(wc -l <"$TMP/bulk.out")"
fi
run rv consume -t bulk -e -q -c 100000 -f '%o\n'
if [[ $RC == 0 && $(wc -l <<<"$OUT") == 100000 ]]; then ok; else bad "-c 100000 over two partitions"; fi

printf '%d passed, %d failed\n' "$pass" "$fail"
((fail == 0))
