import asyncio

import pytest


@pytest.fixture(autouse=True)
def _event_loop() -> None:
    # Pulumi's mock runtime expects a current event loop in the main thread (#6465).
    asyncio.set_event_loop(asyncio.new_event_loop())
