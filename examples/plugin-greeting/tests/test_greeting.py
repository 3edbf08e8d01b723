"""The example plugin, as Seamflow finds it: through the `seamflow.connectors` entry points."""

from __future__ import annotations

import pytest

from seamflow import connectors, errors
from seamflow.ids import Json


async def open_greeting(config: dict[str, Json]) -> connectors.Connector:
    connector = connectors.available_connectors()["greeting"]()
    await connector.open(connectors.Connection(name="hello", connector="greeting", config=config))
    return connector


async def test_greet_returns_a_greeting_with_the_key() -> None:
    greeting = await open_greeting({"salutation": "Good morning"})
    result = await greeting.call("greet", {"name": "Ada"}, idempotency_key="run_1:greet")
    await greeting.close()
    assert result == {"message": "Good morning, Ada!", "idempotency_key": "run_1:greet"}


async def test_bad_input_is_permanent_and_names_the_field() -> None:
    greeting = await open_greeting({})
    with pytest.raises(errors.Permanent, match=r"hello\.greet: invalid input: name"):
        await greeting.call("greet", {"name": ""}, idempotency_key="k")


async def test_bad_config_names_the_fields_and_hides_the_values() -> None:
    with pytest.raises(errors.InvalidInput, match="salutation, colour") as caught:
        await open_greeting({"salutation": None, "colour": "s3cret-value"})
    assert "s3cret-value" not in str(caught.value)
