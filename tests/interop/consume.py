"""Reads every record of one topic with confluent-kafka and prints one line per record.

Usage: consume.py BOOTSTRAP TOPIC PARTITIONS COUNT TIMEOUT_S

Each partition is assigned from its beginning; the script stops once COUNT records have come
(or fails after TIMEOUT_S seconds) and prints, per record, in the order received per partition:
    partition offset key value headers
with key and value in hex ("-" for null) and headers as name=hexvalue joined by ",". It is the
independent reader of test_kafka_interop.c: it must not use rivulet in any way.
"""
import sys
import time

import confluent_kafka as ck


def hx(b):
    return "-" if b is None else b.hex()


def main():
    boot, topic, parts, count, timeout_s = sys.argv[1:6]
    consumer = ck.Consumer({
        "bootstrap.servers": boot,
        "group.id": "interop-python",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(int(parts))])
    got = 0
    deadline = time.monotonic() + float(timeout_s)
    while got < int(count) and time.monotonic() < deadline:
        m = consumer.poll(0.2)
        if m is None:
            continue
        if m.error():
            print("consume error:", m.error(), file=sys.stderr)
            continue
        headers = ",".join(f"{n}={hx(v)}" for n, v in (m.headers() or []))
        print(m.partition(), m.offset(), hx(m.key()), hx(m.value()), headers or "-")
        got += 1
    consumer.close()
    if got < int(count):
        print(f"only {got} of {count} records in {timeout_s} s", file=sys.stderr)
        sys.exit(1)


main()
