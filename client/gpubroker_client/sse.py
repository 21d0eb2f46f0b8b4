"""Server-Sent Events read from lines, as the HTML standard's event-stream format defines them:
``field: value`` lines, an empty line ends an event, a line starting with ``:`` is a comment (the
gateway's keep-alives), ``retry`` sets the reconnection delay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gpubroker_client.decoding import loads
from gpubroker_client.models import StreamEvent


@dataclass
class EventReader:
    """Turns lines into events; remembers the last event id and the server's retry delay."""

    last_event_id: str | None = None
    retry_s: float | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> StreamEvent | None:
        """The event this line completes, if it does."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> StreamEvent | None:
        event_id, event, data = self._id, self._event or "message", self._data
        self._event, self._data = "", []
        if event_id is not None:
            self.last_event_id = event_id
        if not data:
            return None
        return StreamEvent(event_id, event, loads("\n".join(data)))


async def events(lines: AsyncIterator[str], reader: EventReader) -> AsyncIterator[StreamEvent]:
    async for line in lines:
        event = reader.feed(line.rstrip("\r\n"))
        if event is not None:
            yield event
