"""Reading exactly what a test's own actions wrote to the real topics: note the partitions' ends
first, then read every record written after them."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # the client that asks for partitions
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await producer.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await producer.partitions_for(topic))]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
        await producer.stop()


async def read_since(bootstrap: str, start: dict[TopicPartition, int]) -> list[tuple[str, bytes]]:
    """Every keyed record written after ``start`` (the ends of a topic's partitions) until now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for partition, offset in start.items():
            consumer.seek(partition, offset)
        ends = await consumer.end_offsets(list(start))
        records: list[tuple[str, bytes]] = []
        while any([await consumer.position(p) < ends[p] for p in start]):
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records += [(m.key.decode(), m.value) for m in batch if m.key is not None and m.value is not None]
        return records
    finally:
        await consumer.stop()
