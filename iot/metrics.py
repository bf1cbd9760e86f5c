"""Prometheus counters for sensors and rules (served by /metrics with the rest of the office)."""

from prometheus_client import Counter

READINGS = Counter("office_iot_readings_total", "Sensor readings stored", ["source", "kind"])
READINGS_REJECTED = Counter(
    "office_iot_readings_rejected_total", "Sensor messages refused, by reason", ["source", "reason"]
)
RULE_FIRINGS = Counter("office_iot_rule_firings_total", "Rule episodes fired", ["action"])
RULES_SKIPPED = Counter("office_iot_rules_skipped_total", "Due rules skipped, by reason", ["reason"])
RULE_ERRORS = Counter("office_iot_rule_errors_total", "Rule firings that failed and will be retried")
INGESTER_CONNECTS = Counter("office_iot_ingester_connects_total", "MQTT connections by the ingester", ["result"])
