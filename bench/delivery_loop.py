"""The webhook delivery loop as a process of its own, for the soak: the code the
``webhook_delivery`` DAG's one task runs (``dags/gpubroker_dags/delivery.py``), started again
each time a run ends, as the continuous DAG does, until SIGTERM.

Its settings are the DAG's (``gpubroker_dags.config``): ``GPUBROKER_SERVICE_TOKEN``,
``GPUBROKER_KAFKA_BOOTSTRAP`` and ``GPUBROKER_WEBHOOK_ALLOWED_NETWORKS``.

    .venv/bin/python bench/delivery_loop.py --gateway URL [--group NAME] [--run-for-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "dags")]

from gpubroker_dags import config  # noqa: E402
from gpubroker_dags.delivery import GROUP, DeliveryService, Options  # noqa: E402
from gpubroker_dags.gateway import Gateway  # noqa: E402

GATEWAY_WAIT_S = 120.0
"""As the DAG: a gateway restart is waited out rather than failing the run."""
RETRY_DELAY_S = 10.0
"""As the DAG's task: a failed run (Kafka away) is started again after this."""


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    options = Options(config.kafka_bootstrap(), config.allowed_networks(), group=args.group)
    stopping = asyncio.ensure_future(stop.wait())
    async with Gateway(args.gateway, wait_s=GATEWAY_WAIT_S) as gateway:
        while not stop.is_set():
            run = asyncio.ensure_future(DeliveryService(gateway, options).run(args.run_for_s))
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                run.cancel()
            [outcome] = await asyncio.gather(run, return_exceptions=True)
            if isinstance(outcome, Exception):
                failure = f"{type(outcome).__name__}: {outcome}"
                print(f"the delivery run failed ({failure}); again in {RETRY_DELAY_S:g}s", flush=True)
                await asyncio.wait({stopping}, timeout=RETRY_DELAY_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True, help="the gateway's base URL")
    parser.add_argument("--group", default=GROUP, help=f"the Kafka consumer group (default {GROUP})")
    parser.add_argument("--run-for-s", type=float, default=600.0, help="one run's length, as the DAG's run_for_s")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
