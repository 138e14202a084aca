"""Write the Redis upgrade fixture with the library of commit 6c7f177 (layout 1).

Run from the repository root with the old library first on the path:

    git archive 6c7f177 pikku_storage | tar -x -C /tmp/old-redis
    PYTHONPATH=/tmp/old-redis:. python tests/upgrade/make_redis_fixture.py

It fills a fakeredis namespace through the old public API (runs running with a pending step,
running with a succeeded step, completed with a pending step; a version; threads of two
owners with messages and an agent run) and dumps every key as JSON, the namespace replaced by
`PREFIX` so the test can load it under any prefix. Spec: 05 §5 item 36.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, cast

import fakeredis

from pikku_storage import ManualClock
from pikku_storage.redis import LATEST_VERSION, storage_from_client
from tests.upgrade._old import write_scenario

PREFIX: Final = "upg05fixture"
PLACEHOLDER: Final = "PREFIX"
OUT: Final = Path(__file__).parent / "fixtures" / "redis" / "layout1.json"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _write(client: fakeredis.FakeAsyncRedis) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with storage_from_client(client, key_prefix=PREFIX, clock=clock) as storage:
        await write_scenario(storage, clock)
    assert LATEST_VERSION == 1


async def _dump(client: fakeredis.FakeAsyncRedis) -> dict[str, object]:
    out: dict[str, object] = {}
    async for raw in client.scan_iter(match=f"{PREFIX}:*"):
        key = _text(raw)
        kind = _text(await client.type(key))
        value: object
        if kind == "hash":
            value = {_text(k): _text(v) for k, v in (await client.hgetall(key)).items()}
        elif kind == "zset":
            pairs = cast(
                "list[tuple[bytes, float]]", await client.zrange(key, 0, -1, withscores=True)
            )
            value = [[_text(m), s] for m, s in pairs]
        elif kind == "set":
            value = sorted(_text(m) for m in await client.smembers(key))
        elif kind == "list":
            value = [_text(m) for m in await client.lrange(key, 0, -1)]
        else:
            value = _text(cast(bytes, await client.get(key)))
        out[key.replace(PREFIX, PLACEHOLDER)] = {"type": kind, "value": value}
    return dict(sorted(out.items()))


async def main() -> None:
    client = fakeredis.FakeAsyncRedis()
    await _write(client)
    dump = await _dump(client)
    text = json.dumps(dump, indent=1, ensure_ascii=False)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text.replace(PREFIX, PLACEHOLDER) + "\n", encoding="utf-8")
    print(f"wrote {len(dump)} keys to {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
