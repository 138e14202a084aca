"""A small typed application, checked by `mypy --strict` in tests/test_typing.py: payloads
typed as a user would type them (`dict[str, int]`, `list[str]`) are accepted as JSON input."""

from __future__ import annotations

from pikku_storage import JsonValue, Storage, open_storage
from pikku_testing import StorageFactory


async def place_order(storage: Storage, skus: list[str], quantities: dict[str, int]) -> str:
    run_id = await storage.workflows.create_run("order", {"skus": skus, "n": quantities})
    await storage.workflows.update_run_state(run_id, "quantities", quantities)
    await storage.workflows.update_run_state(run_id, "skus", skus)
    return run_id


async def read_back(storage: Storage, run_id: str) -> JsonValue:
    state = await storage.workflows.get_run_state(run_id)
    return state.get("skus")


async def remember(storage: Storage, thread_id: str, counts: dict[str, int]) -> None:
    await storage.ai_storage.save_working_memory(thread_id, "thread", {"counts": counts})


async def main() -> None:
    async with open_storage("memory://") as storage:
        run_id = await place_order(storage, ["a", "b"], {"a": 1})
        await read_back(storage, run_id)


async def with_factory(factory: StorageFactory) -> Storage:
    return await factory(isolated=True)
