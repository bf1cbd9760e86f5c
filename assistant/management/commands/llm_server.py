"""Serve a packaged model on 127.0.0.1 with the OpenAI-compatible API until stopped."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from assistant.llm_server import start_server


class Command(BaseCommand):
    help = "Run the embedded llama.cpp server for one model tier (small or large)."

    def add_arguments(self, parser):
        parser.add_argument("--tier", choices=["small", "large"], default="small")
        parser.add_argument("--port", type=int, default=0, help="default: OFFICE_LLM_SMALL_PORT / _LARGE_PORT")
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (0.0.0.0 in a container, behind its own network)")

    def handle(self, *args, tier, port, host, **options):
        port = port or (settings.OFFICE_LLM_SMALL_PORT if tier == "small" else settings.OFFICE_LLM_LARGE_PORT)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        server = start_server(tier, port, host=host)
        self.stdout.write(f"{tier} model served at http://{host}:{port}/v1")
        stop.wait()
        del server
