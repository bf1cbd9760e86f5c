"""ASGI entry: HTTP through Django, WebSockets through Channels behind origin and session checks."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from office.routing import websocket_urlpatterns  # noqa: E402
from office.twisted_writes import send_at_once_when_idle  # noqa: E402
from office.ws_frame_logging import skip_frame_debug_formatting  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

skip_frame_debug_formatting()
send_at_once_when_idle()

# Everything loaded so far lives as long as the process: move it out of the collector's sight.
# Measured with bench/movement.py at 200 clients, full collections over these ~150k objects paused
# the event loop for 75-130 ms every few seconds (the movement p99); frozen, 10-35 ms.
gc.collect()
gc.freeze()
# Fewer, later collections of what the sockets create (each full pass stalls every socket).
gc.set_threshold(10_000, 50, 100)
