"""The Kafka backend (aiokafka): idempotent, acks=all, snappy-compressed, batched."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gpubroker.core.bus import Headers, Record

log = logging.getLogger(__name__)


class KafkaBus:
    def __init__(self, bootstrap: str, *, linger_ms: int = 5) -> None:
        self._bootstrap = bootstrap
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            compression_type="snappy",
            linger_ms=linger_ms,
            client_id=f"gpubroker-{uuid.uuid4().hex[:8]}",
        )
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._producer.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> None:
        await self._producer.send(topic, value=value, key=key.encode(), headers=list(headers))

    async def flush(self) -> None:
        await self._producer.flush()

    async def subscribe(self, topics: Sequence[str], *, from_beginning: bool = True) -> AsyncIterator[Record]:
        # No consumer group: every gateway instance needs every record to build its own view.
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        await consumer.start()
        try:
            async for message in consumer:
                yield Record(
                    topic=message.topic,
                    key=message.key.decode() if message.key is not None else None,
                    value=message.value,
                    offset=message.offset,
                    partition=message.partition,
                    headers=tuple(message.headers or ()),
                )
        finally:
            await consumer.stop()
