"""Message brokers: `amqp` (RabbitMQ), `mqtt` (Mosquitto and other MQTT brokers) and `redis` (Redis streams).

Each connector offers the action `publish` and one `consume` feed (`queue`, `topic`,
`stream`) whose batches are acknowledged only after the engine committed their events.
`settings.py` holds what the connections share (address, login, TLS), `message.py` the
bodies, keys and batching; `amqp.py`, `mqtt.py` and `redis_streams.py` one broker each.
See docs/howto/connectors/brokers.md.
"""

from __future__ import annotations

from seamflow.connectors.brokers.amqp import AmqpConnector
from seamflow.connectors.brokers.mqtt import MqttConnector
from seamflow.connectors.brokers.redis_streams import RedisConnector

__all__ = ["AmqpConnector", "MqttConnector", "RedisConnector"]
