"""A TCP proxy that delays: `python -m tests.cluster.delay --delay 0.02 LISTEN_HOST:PORT=TARGET_HOST:PORT ...`,
run on the db host for the benchmark (benchmarks/bench_cluster.py). This kernel has no netem
qdisc; each byte waits delay/2 on its way in and delay/2 on its way out, so a round trip takes
`delay` longer, and a connection's bytes keep their order and are pipelined as on a long link."""

from __future__ import annotations

import argparse
import asyncio


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def send() -> None:
        while (item := await queue.get())[1]:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((0.0, b""))
    try:
        await sender
    except ConnectionError:
        pass
    writer.close()


async def serve(listen: str, target: str, delay: float) -> asyncio.Server:
    host, port = target.rsplit(":", 1)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w, delay / 2), pipe(server_r, client_w, delay / 2))

    at, at_port = listen.rsplit(":", 1)
    return await asyncio.start_server(handle, at, int(at_port))


async def main(routes: list[str], delay: float) -> None:
    servers = [await serve(*route.split("="), delay) for route in routes]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, required=True, help="seconds added to each round trip")
    parser.add_argument("routes", nargs="+", help="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    args = parser.parse_args()
    asyncio.run(main(args.routes, args.delay))
