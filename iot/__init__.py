"""Office sensors over MQTT (`ingest`, `mqtt_auth`) and signed webhooks, their readings, restart-safe
rules that open facilities tickets and post to room chat (`rules`, `actions`, ADR 0009), room
occupancy and bookings.

Public modules: `services`, `selectors`, `serializers`, `consumers` (the occupancy part of the
office socket and the sensors page socket). Builds on automation and rooms (docs/adr/0013).
"""
