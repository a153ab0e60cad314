#!/usr/bin/env bash
# Installs the Debian packages rivulet needs to build, test, fuzz and benchmark.
# Idempotent: when every package is already installed it only runs dpkg-query and exits.
set -euo pipefail

packages=(
    # build
    build-essential cmake pkg-config
    # fuzzing (libFuzzer ships in clang's runtime package) and sanitizers
    clang libclang-rt-dev
    # compression codecs of the embedded log
    libzstd-dev liblz4-dev
    # the kafka:// broker (librdkafka, with its mock cluster for the tests), and kcat and the
    # Python client to talk to the same clusters by hand
    librdkafka-dev kcat python3-confluent-kafka
    # durable state stores (RocksDB's C API) and the telemetry wire protocol (protobuf-c and its
    # code generator)
    librocksdb-dev libprotobuf-c-dev protobuf-c-compiler
    # the CLI tests recompute figures from JSON output with jq
    jq
    # baselines measured by `make bench`
    libjansson-dev libjson-c-dev
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "deps.sh: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists when they are missing or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]]; then
    $sudo apt-get update -q
fi
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
