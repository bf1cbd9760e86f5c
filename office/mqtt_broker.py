"""The embedded MQTT broker (amqtt) for `make run` and tests: loopback only.

Production points MQTT_URL at Mosquitto or EMQX instead. Sensors get per-device credentials
with the IoT work; until then the embedded broker accepts anonymous clients on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from amqtt.broker import Broker


def broker_config(bind: str) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": bind, "max_connections": 1000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(bind: str) -> None:
    broker = Broker(broker_config(bind))
    await broker.start()
    print(f"mqtt broker listening on {bind}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:1884")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.bind))


if __name__ == "__main__":
    main()
