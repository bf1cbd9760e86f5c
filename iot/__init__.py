"""Office sensors over MQTT and signed webhooks, and the rules they feed (not built yet)."""
