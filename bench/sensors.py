"""Sensor benchmark: MQTT message -> ingester -> rule -> facilities ticket + room chat message.

    .venv/bin/python bench/sensors.py
    .venv/bin/python bench/sensors.py --samples 60 --messages 3000 --publishers 4

Starts a throwaway office (bench/common.py's BenchStack: embedded PostgreSQL, Valkey and MQTT on
free ports, migrated), registers projectors in one room and a rule "projector offline, for 0 s ->
facilities ticket + chat message" (built-in rules are switched off so only it acts), and runs
`manage.py iot_ingester` as its own process, as `make run` does.

* Latency: each sample is a different projector publishing {"state": "offline"} (QoS 1). The time
  until both the ticket and the chat message for that projector are committed is measured by
  polling PostgreSQL every 5 ms from this process (the real path: broker, ingester, rule, kernel,
  chat). Target: p95 <= 1 s.
* Throughput: --publishers clients publish --messages temperature readings (QoS 1) as fast as the
  broker takes them; messages/s = messages / (last reading committed - first publish).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, BenchStack, latency_summary, log, print_table, write_results  # noqa: E402


def django_setup(env: dict[str, str]) -> None:
    for key in ("DATABASE_URL", "REDIS_URL", "MQTT_URL", "SECRET_KEY", "OFFICE_DATA_DIR", "LOG_LEVEL", "LOG_FORMAT",
                "DJANGO_SETTINGS_MODULE", "CHANNEL_LAYER_PREFIX", "OFFICE_IOT_MQTT_USERNAME", "OFFICE_IOT_MQTT_PASSWORD"):
        os.environ[key] = env[key]
    import django

    django.setup()


def make_office(samples: int) -> dict:
    from iot import services
    from iot.models import Rule
    from rooms import services as room_services

    hq = room_services.office_map_create(name="Bench HQ", slug="bench-hq", width=40, height=24, spawn_x=20, spawn_y=20)
    room = room_services.room_create(office_map=hq, name="Atlas", kind="meeting", x=2, y=1, width=9, height=6,
                                     doors=[[6, 6]], capacity=6)
    Rule.objects.update(enabled=False)
    services.rule_create(name="bench: projector offline", scope="kind", sensor_kind="projector", op="in",
                         value=["offline", "error"], for_seconds=0, clear_op="in", clear_value=["on", "off"],
                         clear_for_seconds=60, action="facilities_ticket", severity="high")
    projectors = []
    for i in range(samples):
        sensor, _ = services.sensor_create(room=room, kind="projector", name=f"Projector {i}",
                                           device_id=f"bench-projector-{i}")
        projectors.append(sensor.id)
    thermometer, _ = services.sensor_create(room=room, kind="temperature", name="Thermometer",
                                            device_id="bench-thermometer")
    return {"projectors": projectors, "thermometer": thermometer.id}


def ticket_and_message_seen(sensor_id: int) -> bool:
    from automation.models import Ticket
    from iot.models import RuleFiring
    from rooms.models import ChatMessage

    firing = RuleFiring.objects.filter(sensor_id=sensor_id).first()
    if firing is None or firing.ticket_id is None or firing.chat_message_id is None:
        return False
    return (Ticket.objects.filter(pk=firing.ticket_id).exists()
            and ChatMessage.objects.filter(pk=firing.chat_message_id).exists())


def readings_count(sensor_id: int) -> int:
    from iot.models import SensorReading

    return SensorReading.objects.filter(sensor_id=sensor_id).count()


async def poll(fn, *args, timeout: float = 30.0, interval: float = 0.005):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = await asyncio.to_thread(fn, *args)
        if value:
            return value, time.perf_counter()
        await asyncio.sleep(interval)
    return None, time.perf_counter()


async def connect_publisher(uri: str, name: str):
    from amqtt.client import MQTTClient

    client = MQTTClient(client_id=name, config={"auto_reconnect": False})
    await client.connect(uri)
    return client


async def measure_latency(uri: str, projectors: list[int], gap: float) -> tuple[list[float], int]:
    from amqtt.mqtt.constants import QOS_1

    client = await connect_publisher(uri, "bench-latency")
    latencies, missed = [], 0
    try:
        for i, sensor_id in enumerate(projectors):
            started = time.perf_counter()
            await client.publish(f"office/sensors/bench-projector-{i}", b'{"state": "offline"}', qos=QOS_1)
            seen, at = await poll(ticket_and_message_seen, sensor_id, timeout=15)
            if seen:
                latencies.append(at - started)
            else:
                missed += 1
            await asyncio.sleep(gap)
    finally:
        await client.disconnect()
    return latencies, missed


async def measure_throughput(uri: str, thermometer: int, messages: int, publishers: int) -> dict:
    from amqtt.mqtt.constants import QOS_1

    before = await asyncio.to_thread(readings_count, thermometer)
    clients = [await connect_publisher(uri, f"bench-pub-{n}") for n in range(publishers)]
    per = messages // publishers

    async def publish_all(client, n: int) -> None:
        for k in range(per):
            payload = json.dumps({"celsius": 20 + (k % 50) / 10, "id": f"p{n}-{k}"}).encode()
            await client.publish("office/sensors/bench-thermometer", payload, qos=QOS_1)

    started = time.perf_counter()
    await asyncio.gather(*(publish_all(c, n) for n, c in enumerate(clients)))
    published_at = time.perf_counter()
    total = per * publishers
    _, done_at = await poll(lambda: readings_count(thermometer) - before >= total, timeout=300, interval=0.05)
    stored = await asyncio.to_thread(readings_count, thermometer) - before
    for client in clients:
        await client.disconnect()
    elapsed = done_at - started
    return {
        "messages": total, "stored": stored, "lost": total - stored, "publishers": publishers,
        "publish_s": round(published_at - started, 2), "elapsed_s": round(elapsed, 2),
        "messages_per_s": round(stored / elapsed, 1) if elapsed > 0 else None,
    }


async def wait_for_ingester(uri: str, thermometer: int) -> bool:
    """The ingester is subscribed once a probe reading is stored."""
    from amqtt.mqtt.constants import QOS_1

    probe = await connect_publisher(uri, "bench-probe")
    try:
        for _ in range(60):
            await probe.publish("office/sensors/bench-thermometer", b'{"celsius": 21}', qos=QOS_1)
            stored, _ = await poll(readings_count, thermometer, timeout=0.5)
            if stored:
                return True
        return False
    finally:
        await probe.disconnect()


async def measure(args, uri: str, ids: dict):
    if not await wait_for_ingester(uri, ids["thermometer"]):
        raise SystemExit("the ingester never stored a probe reading; see ingester.log (--keep)")
    log(f"ingester subscribed; {args.samples} latency samples")
    latencies, missed = await measure_latency(uri, ids["projectors"], args.gap)
    log(f"latency done; throughput with {args.messages} messages from {args.publishers} publishers")
    throughput = await measure_throughput(uri, ids["thermometer"], args.messages, args.publishers)
    return latencies, missed, throughput


def run(args) -> int:
    stack = BenchStack(keep=args.keep)
    ingester = None
    log_file = None
    try:
        stack.start()
        django_setup(stack.env)
        ids = make_office(args.samples)
        log_file = open(stack.tmp / "ingester.log", "ab")  # noqa: SIM115
        ingester = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "iot_ingester", "--no-schedule"],
            env={**stack.env, "OFFICE_IOT_MQTT_CLIENT_ID": "bench-ingester"}, cwd=ROOT,
            stdout=log_file, stderr=subprocess.STDOUT,
        )
        log(f"ingester pid {ingester.pid}")
        from iot.ingest import broker_uri

        # The embedded broker signs in nobody anonymously; the publishers use the office's service login.
        latencies, missed, throughput = asyncio.run(measure(args, broker_uri(), ids))
    finally:
        if ingester is not None and ingester.poll() is None:
            ingester.terminate()
            try:
                ingester.wait(10)
            except subprocess.TimeoutExpired:
                ingester.kill()
        if log_file is not None:
            log_file.close()
        stack.stop()

    latency = latency_summary(latencies)
    row = {"samples": len(latencies), "missed": missed, **latency}
    print()
    print_table([row], ["samples", "missed", "p50_ms", "p95_ms", "p99_ms", "max_ms"])
    print()
    print_table([throughput], ["messages", "stored", "lost", "publishers", "elapsed_s", "messages_per_s"])
    target_met = latency["p95_ms"] is not None and latency["p95_ms"] <= 1000
    print(f"\nsensor message -> ticket + chat message p95 {latency['p95_ms']} ms: "
          f"{'met' if target_met else 'MISSED'} (target <= 1000 ms)")
    path = write_results("sensors.json", {
        "bench": "sensors", "latency": {"samples": len(latencies), "missed": missed, **latency,
                                        "target_p95_ms": 1000, "target_met": target_met},
        "throughput": throughput,
    })
    log(f"results in {path}")
    return 0 if missed == 0 and throughput["lost"] == 0 else 1


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40, help="latency samples (one projector each)")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between latency samples")
    parser.add_argument("--messages", type=int, default=2000, help="readings for the throughput run")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (logs)")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
