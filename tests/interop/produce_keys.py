"""Produces one record per key with confluent-kafka's murmur2_random partitioner and prints
where each landed.

Usage: produce_keys.py BOOTSTRAP TOPIC < keys

stdin holds one key per line, in hex. For each key a record (value "v" + its line number) is
produced with no partition given, so librdkafka's murmur2_random partitioner (Kafka's Java
client's) chooses; once every delivery report is in, the script prints "hexkey partition
offset" per record. It is the independent writer of test_kafka_interop.c: it must not use
rivulet in any way.
"""
import sys

import confluent_kafka as ck


def main():
    boot, topic = sys.argv[1:3]
    producer = ck.Producer({
        "bootstrap.servers": boot,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
    })
    results = []
    failed = []

    def report(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            results.append((msg.key().hex(), msg.partition(), msg.offset()))

    for i, line in enumerate(sys.stdin):
        key = bytes.fromhex(line.strip())
        producer.produce(topic, key=key, value=b"v%d" % i, on_delivery=report)
        producer.poll(0)
    left = producer.flush(20)
    if failed or left:
        print(f"{len(failed)} failed ({failed[:3]}), {left} not delivered", file=sys.stderr)
        sys.exit(1)
    for key, partition, offset in results:
        print(key, partition, offset)


main()
