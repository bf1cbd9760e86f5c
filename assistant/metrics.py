"""Model calls as Prometheus metrics (every call also leaves a `ModelCall` row: this is the live view)."""

from prometheus_client import Histogram

MODEL_CALL_SECONDS = Histogram(
    "office_model_call_seconds", "Language-model call latency, by tier, purpose and outcome",
    ["tier", "purpose", "status"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)
