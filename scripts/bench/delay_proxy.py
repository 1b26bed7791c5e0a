"""A TCP proxy that delays every chunk by a fixed time each way: a client far from the registry and the
bucket, emulated on loopback (a delay line: latency is added, bandwidth is not throttled, order kept).

    .venv/bin/python -m scripts.bench.delay_proxy --listen 127.0.0.1:9000 --to 127.0.0.1:8000 --delay-ms 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

READ_SIZE = 256 * 1024
QUEUED_CHUNKS = 256  # per direction: up to 64 MiB in flight, more than a 10 ms line carries on loopback
_REQUEST_LINE = re.compile(rb"(GET|HEAD|PUT|POST|DELETE|PROPFIND|MKCOL|OPTIONS|MOVE|COPY) /")


@dataclass
class DelayProxy:
    """Listens on 127.0.0.1:<port> and forwards to `target`, each chunk `delay` seconds later."""

    target: tuple[str, int]
    delay: float
    port: int = 0
    connections: int = 0  # accepted so far (a client that keeps its connections alive opens few)
    # requests by method, counted from client chunks that begin with a request line: a diagnostic
    # (a request head split across reads, or a body chunk that happens to start like one, miscounts)
    requests: Counter[str] = field(default_factory=Counter)
    _server: asyncio.Server | None = field(default=None, repr=False)
    # asyncio keeps only weak references to tasks: a connection's task must not be collected mid-way
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    async def start(self, host: str = "127.0.0.1") -> None:
        self._server = await asyncio.start_server(self._handle, host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.connections += 1
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(
                self._pipe(client_r, upstream_w, client_w, count=True),
                self._pipe(upstream_r, client_w, upstream_w),
                return_exceptions=True,
            )
        finally:
            for writer in (client_w, upstream_w):
                writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        source: asyncio.StreamWriter,
        *,
        count: bool = False,
    ) -> None:
        """Read as fast as the source sends; each chunk leaves `delay` after it arrived, in order. EOF
        (a half-close) is delayed too, so a hang-up reaches the other side when its bytes would have;
        when the destination is gone, the source is closed (the hang-up travels back)."""
        line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)

        async def send() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due, chunk = await line.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    if not chunk:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(chunk)
                    await writer.drain()
                except (ConnectionError, OSError):
                    source.close()  # the reader then sees EOF; what is still queued is dropped
                    while chunk:
                        _, chunk = await line.get()
                    return

        sender = asyncio.create_task(send())
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    chunk = await reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    chunk = b""
                if count and (found := _REQUEST_LINE.match(chunk)):
                    self.requests[found.group(1).decode()] += 1
                await line.put((loop.time() + self.delay, chunk))
                if not chunk:
                    break
            await sender
        finally:
            sender.cancel()


class ProxyThread:
    """DelayProxies on an event loop of their own thread, for benchmarks and tests that are not async."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxies: list[DelayProxy] = []

    def add(self, target_url_or_host: str, delay: float) -> DelayProxy:
        """A proxy to `host:port` (or an http URL's host and port); its port is set on return."""
        host, port = _host_port(target_url_or_host)
        proxy = DelayProxy((host, port), delay)
        asyncio.run_coroutine_threadsafe(proxy.start(), self._loop).result(10)
        self._proxies.append(proxy)
        return proxy

    def traffic(self) -> tuple[int, Counter[str]]:
        """Connections accepted and requests seen (by method) by every proxy so far."""
        requests: Counter[str] = Counter()
        for proxy in self._proxies:
            requests.update(proxy.requests)
        return sum(proxy.connections for proxy in self._proxies), requests

    def stop(self) -> None:
        """Close the listeners and every open connection, then the loop."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        for proxy in self._proxies:
            await proxy.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the closed transports finish closing


def _host_port(address: str) -> tuple[str, int]:
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on")
    parser.add_argument("--to", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="each way (default: %(default)s)")
    args = parser.parse_args()

    async def run() -> None:
        host, port = _host_port(args.listen)
        proxy = DelayProxy(_host_port(args.to), args.delay_ms / 1000, port=port)
        await proxy.start(host)
        print(f"{host}:{proxy.port} -> {args.to}, +{args.delay_ms} ms each way", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
