"""Benchmarks of pikku-storage, outside the runtime package: `python -m benchmarks`.

Ours runs on the public API only (`open_storage`, `Storage`, the service methods); the raw
twins run the same statements or commands on the bare drivers (stdlib `sqlite3` in a worker
thread, psycopg, redis-py, aiomysql), measured interleaved in one run. See `scripts/bench`.
"""

from __future__ import annotations
