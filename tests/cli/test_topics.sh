#!/usr/bin/env bash
# test_topics.sh: `rivulet topics create|list|describe|delete` on the embedded log: a round
# trip with exact output, topic configuration (-c), watermarks after producing, and the error
# messages for every mistake a user makes (existing topic, missing topic, bad partition count,
# bad or misplaced -c property, bad name, bad broker URL, usage errors).
#
# usage: bash test_topics.sh PATH_TO_RIVULET SOURCE_DIR
set -u
RIVULET=${1:?usage: test_topics.sh PATH_TO_RIVULET SOURCE_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
B="local:$TMP/data"
unset RIVULET_BROKER
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

# expect_err_has NAME RC PREFIX WORD...: the last run exited RC, its stderr is one line that
# starts with PREFIX and contains every WORD.
expect_err_has() {
    local name=$1 rc=$2 prefix=$3 w
    shift 3
    local good=1
    [[ $RC == "$rc" && -z $OUT && $ERR == "$prefix"* && $ERR != *$'\n'* ]] || good=0
    for w in "$@"; do
        [[ $ERR == *"$w"* ]] || good=0
    done
    if ((good)); then
        ok
    else
        bad "$name: status $RC (want $rc), stderr '$ERR' should start with '$prefix' and name: $*"
    fi
}

# The topic-scoped properties and their defaults, from the configuration reference.
topic_defaults() {
    rv config list --markdown |
        awk -F'|' '$6 ~ /^ topic $/ { n=$2; d=$4; gsub(/[ `]/, "", n); gsub(/[ `]/, "", d);
                                   print n "=" d }'
}

# describe_expected TOPIC PARTITIONS "0 0 0" OVERRIDES...: the exact describe output, with
# each partition's "low high" pair and name=value overrides of the default configuration.
describe_expected() {
    local topic=$1 parts=$2 marks=$3 line name
    shift 3
    printf 'topic: %s\npartitions: %s\n' "$topic" "$parts"
    local p=0
    for pair in $marks; do
        printf '  partition %d: low %s, high %s\n' "$p" "${pair%/*}" "${pair#*/}"
        p=$((p + 1))
    done
    printf 'config:\n'
    while IFS= read -r line; do
        name=${line%%=*}
        local set=
        for o in "$@"; do
            [[ ${o%%=*} == "$name" ]] && set=$o
        done
        if [[ -n $set ]]; then
            printf '  %s\n' "$set"
        else
            printf '  %s (default)\n' "$line"
        fi
    done < <(topic_defaults)
}

# ---- the configuration reference has topic properties to show ----
if [[ $(topic_defaults | grep -c '^cleanup.policy=delete$') == 1 ]]; then ok; else
    bad "config list --markdown lists cleanup.policy as a topic property"
fi

# ---- round trip ----
run rv topics list -b "$B"
expect "list on an empty broker" 0 ""

run rv topics create orders -p 3 -b "$B"
expect "create with -p 3" 0 "created topic 'orders' with 3 partitions"

run rv topics create -b "$B" -c cleanup.policy=compact -c retention.ms=1h changelog
expect "create with -c (options before NAME)" 0 "created topic 'changelog' with 1 partition"

run rv topics create audit -b "$B" -c compression.type=zstd -p 2 -c retention.bytes=1MiB
expect "create with -c and -p mixed" 0 "created topic 'audit' with 2 partitions"

run rv topics list -b "$B"
expect "list is sorted" 0 "audit
changelog
orders"

run rv topics describe orders -b "$B"
expect "describe a new topic" 0 "$(describe_expected orders 3 "0/0 0/0 0/0")"

run rv topics describe changelog -b "$B"
expect "describe shows -c values" 0 \
    "$(describe_expected changelog 1 "0/0" cleanup.policy=compact retention.ms=3600000)"

run rv topics describe audit -b "$B"
expect "describe shows sizes and enums" 0 \
    "$(describe_expected audit 2 "0/0 0/0" compression.type=zstd retention.bytes=1048576)"

# Watermarks move when records are produced.
printf 'a\nb\nc\n' | rv produce -t orders -p 1 -b "$B"
printf 'd\n' | rv produce -t orders -p 2 -b "$B"
run rv topics describe orders -b "$B"
expect "describe shows watermarks" 0 "$(describe_expected orders 3 "0/0 0/3 0/1")"

# ---- errors ----
run rv topics create orders -b "$B"
expect_err_has "create an existing topic" 1 "rivulet topics create: " "orders" "exists"

run rv topics describe nosuch -b "$B"
expect_err_has "describe a missing topic" 1 "rivulet topics describe: " "nosuch"

run rv topics delete nosuch -b "$B"
expect_err_has "delete a missing topic" 1 "rivulet topics delete: " "nosuch"

run rv topics create t0 -p 0 -b "$B"
expect_err "zero partitions" 2 \
    "rivulet topics create: -p needs a partition count from 1 to 2147483647, got '0'"

run rv topics create t0 -p three -b "$B"
expect_err "partitions not a number" 2 \
    "rivulet topics create: -p needs a partition count from 1 to 2147483647, got 'three'"

run rv topics create t0 -p 3x -b "$B"
expect_err "partitions with junk" 2 \
    "rivulet topics create: -p needs a partition count from 1 to 2147483647, got '3x'"

run rv topics create t0 -c cleanup.policy=sometimes -b "$B"
expect_err_has "bad -c value names the accepted values" 2 "rivulet topics create: " \
    "cleanup.policy" "sometimes" "delete" "compact"

run rv topics create t0 -c retention.ms=soon -b "$B"
expect_err_has "bad -c duration" 2 "rivulet topics create: " "retention.ms" "soon"

run rv topics create t0 -c no.such.property=1 -b "$B"
expect_err_has "unknown -c property" 2 "rivulet topics create: " "no.such.property"

run rv topics create t0 -c cleanup.policy -b "$B"
expect_err_has "-c without =" 2 "rivulet topics create: " "cleanup.policy"

run rv topics create t0 -c linger.ms=5 -b "$B"
expect_err_has "-c with a client property" 2 \
    "rivulet topics create: -c linger.ms=5: 'linger.ms' is a producer property, not a topic property (topic properties: " \
    "cleanup.policy" "retention.ms" "client properties go in -X"

run rv topics create 'bad name!' -b "$B"
expect_err_has "invalid topic name" 1 "rivulet topics create: " "bad name!"

run rv topics create t0 -X linger.ms=forever -b "$B"
expect_err_has "bad -X value" 2 "rivulet topics create: " "linger.ms" "forever"

run rv topics create t0 -b bogus://nowhere
expect_err_has "unknown broker scheme" 1 "rivulet topics create: " "bogus://nowhere"

run rv topics list -b "$B"
expect "failed creates left nothing behind" 0 "audit
changelog
orders"

# ---- usage ----
run rv topics
if [[ $RC == 2 && -z $OUT && $ERR == "usage: rivulet topics SUBCOMMAND"* ]]; then ok; else
    bad "topics without subcommand: status $RC"
fi

run rv topics frobnicate
if [[ $RC == 2 && $ERR == *"rivulet topics: unknown subcommand 'frobnicate'" ]]; then ok; else
    bad "unknown subcommand: status $RC, stderr $ERR"
fi

run rv topics create -b "$B"
expect_err "create without NAME" 2 "rivulet topics create: missing the topic NAME"

run rv topics create a b -b "$B"
expect_err "create with two names" 2 "rivulet topics create: unexpected argument 'b'"

run rv topics describe -b "$B"
expect_err "describe without NAME" 2 "rivulet topics describe: missing the topic NAME"

run rv topics list extra -b "$B"
expect_err "list with an argument" 2 "rivulet topics list: unexpected argument 'extra'"

run rv topics create t0 -y -b "$B"
expect_err "unknown option" 2 "rivulet topics create: unknown option '-y'
try 'rivulet topics create --help'"

run rv topics create t0 -p
expect_err "option without value" 2 "rivulet topics create: option -p needs a value
try 'rivulet topics create --help'"

for sub in "" create list describe delete; do
    # shellcheck disable=SC2086
    run rv topics $sub --help
    if [[ $RC == 0 && $OUT == "usage: rivulet topics"* && -z $ERR ]]; then ok; else
        bad "topics $sub --help: status $RC"
    fi
done
run rv topics create -h
if [[ $RC == 0 && $OUT == *"cleanup.policy"* ]]; then ok; else bad "create -h lists properties"; fi

# ---- delete ----
run rv topics delete orders -b "$B"
expect "delete" 0 "deleted topic 'orders'"

run rv topics list -b "$B"
expect "list after delete" 0 "audit
changelog"

run rv topics create orders -b "$B"
expect "re-create a deleted topic" 0 "created topic 'orders' with 1 partition"

run rv topics describe orders -b "$B"
expect "a re-created topic starts empty" 0 "$(describe_expected orders 1 "0/0")"

# ---- RIVULET_BROKER ----
run env RIVULET_BROKER="local:$TMP/other" "$RIVULET" topics create envtopic
expect "RIVULET_BROKER chooses the broker" 0 "created topic 'envtopic' with 1 partition"
run rv topics list -b "local:$TMP/other"
expect "the topic is on that broker" 0 "envtopic"
run env RIVULET_BROKER="local:$TMP/other" "$RIVULET" topics list -b "$B"
expect "-b overrides RIVULET_BROKER" 0 "audit
changelog
orders"

printf '%d passed, %d failed\n' "$pass" "$fail"
((fail == 0))
