"""The embedded MQTT broker (amqtt) for `make run` and tests: loopback only, no anonymous clients.

Logins are checked by iot/mqtt_auth.py: the office's service account (settings
OFFICE_IOT_MQTT_USERNAME / _PASSWORD, which office/embedded.py generates and keeps in the data
directory) and each enabled sensor with its own password, checked against the hash in the database.
That is why this process runs with Django set up. Production points MQTT_URL at Mosquitto or EMQX
with the equivalent password file and ACL (README, "Sensors").
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from amqtt.broker import Broker


def broker_config(bind: str) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": bind, "max_connections": 1000}},
        "plugins": {"iot.mqtt_auth.OfficeAuthPlugin": {}, "iot.mqtt_auth.OfficeTopicPlugin": {}},
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
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")  # as manage.py does
    import django

    django.setup()
    logging.getLogger("transitions").setLevel(logging.WARNING)  # amqtt's session states, at INFO each
    asyncio.run(serve(args.bind))


if __name__ == "__main__":
    main()
