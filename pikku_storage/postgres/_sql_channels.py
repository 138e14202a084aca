"""SQL templates of the channel, event hub and deployment services (see
docs/operations.md#storage-layout).

`{channels}`, `{subscriptions}`, `{deployments}` and `{functions}` are schema-qualified tables;
column lists match `_rows.py`.
"""

from __future__ import annotations

from typing import Final

from psycopg.sql import SQL

__all__ = [
    "ADD_CHANNEL",
    "CHANNEL_TABLES",
    "DELETE_DEPLOYMENT",
    "DELETE_FUNCTIONS_EXCEPT",
    "FIND_FUNCTION",
    "GET_CHANNEL",
    "HEARTBEAT",
    "INSERT_FUNCTIONS",
    "LIST_DEPLOYMENTS",
    "PRUNE_CHANNELS",
    "PRUNE_DEPLOYMENTS",
    "REMOVE_CHANNELS",
    "SET_USER_SESSION",
    "SUBSCRIBE",
    "TOPIC_CHANNELS",
    "TOUCH",
    "UNSUBSCRIBE",
    "UPSERT_DEPLOYMENT",
]

CHANNEL_TABLES: Final = {
    "channels": "channels",
    "subscriptions": "channel_subscriptions",
    "deployments": "deployments",
    "functions": "deployment_functions",
}

ADD_CHANNEL: Final = SQL(
    "INSERT INTO {channels} (channel_id, channel_name, opening_data, user_session, last_seen)"
    " VALUES (%(channel_id)s, %(channel_name)s, %(opening_data)s, NULL, %(now)s)"
)
# The cascade finds subscriptions through channel_subscriptions_channel_idx.
REMOVE_CHANNELS: Final = SQL("DELETE FROM {channels} WHERE channel_id = ANY(%(ids)s::text[])")
SET_USER_SESSION: Final = SQL(
    "UPDATE {channels} SET user_session = %(session)s WHERE channel_id = %(channel_id)s"
)
# _rows.channel_and_session
GET_CHANNEL: Final = SQL(
    "SELECT channel_id, channel_name, opening_data, user_session FROM {channels}"
    " WHERE channel_id = %(channel_id)s"
)
TOUCH: Final = SQL("UPDATE {channels} SET last_seen = %(now)s WHERE channel_id = %(channel_id)s")
# SKIP LOCKED keeps concurrent prunes disjoint; the picked rows are then deleted by primary key
# with the staleness test re-checked, so a channel touched meanwhile is kept.
PRUNE_CHANNELS: Final = SQL(
    "WITH picked AS MATERIALIZED ("
    "SELECT channel_id FROM {channels} WHERE last_seen < %(cutoff)s"
    " ORDER BY last_seen, channel_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    " DELETE FROM {channels}"
    " WHERE channel_id = ANY(ARRAY(SELECT channel_id FROM picked)) AND last_seen < %(cutoff)s"
    " RETURNING channel_id, last_seen"
)
# Existence check (KEY SHARE lock, so a racing removal waits) and insert in one statement.
SUBSCRIBE: Final = SQL(
    "WITH channel AS ("
    " SELECT channel_id FROM {channels} WHERE channel_id = %(channel_id)s FOR KEY SHARE),"
    " added AS ("
    " INSERT INTO {subscriptions} (topic, channel_id) SELECT %(topic)s, channel_id FROM channel"
    " ON CONFLICT (topic, channel_id) DO NOTHING)"
    " SELECT count(*) FROM channel"
)
UNSUBSCRIBE: Final = SQL(
    "DELETE FROM {subscriptions} WHERE topic = %(topic)s AND channel_id = %(channel_id)s"
)
TOPIC_CHANNELS: Final = SQL(
    "SELECT channel_id FROM {subscriptions} WHERE topic = %(topic)s ORDER BY channel_id"
)

UPSERT_DEPLOYMENT: Final = SQL(
    "INSERT INTO {deployments} (deployment_id, endpoint, last_heartbeat)"
    " VALUES (%(deployment_id)s, %(endpoint)s, %(now)s)"
    " ON CONFLICT (deployment_id) DO UPDATE"
    " SET endpoint = EXCLUDED.endpoint, last_heartbeat = EXCLUDED.last_heartbeat"
)
DELETE_FUNCTIONS_EXCEPT: Final = SQL(
    "DELETE FROM {functions} WHERE deployment_id = %(deployment_id)s"
    " AND NOT (function_name = ANY(%(functions)s::text[]))"
)
INSERT_FUNCTIONS: Final = SQL(
    "INSERT INTO {functions} (function_name, deployment_id)"
    " SELECT f, %(deployment_id)s FROM unnest(%(functions)s::text[]) AS f"
    " ON CONFLICT (function_name, deployment_id) DO NOTHING"
)
DELETE_DEPLOYMENT: Final = SQL("DELETE FROM {deployments} WHERE deployment_id = %(deployment_id)s")
HEARTBEAT: Final = SQL(
    "UPDATE {deployments} SET last_heartbeat = %(now)s WHERE deployment_id = %(deployment_id)s"
)
# _rows.deployment_info
FIND_FUNCTION: Final = SQL(
    "SELECT d.deployment_id, d.endpoint, d.last_heartbeat FROM {functions} AS f"
    " JOIN {deployments} AS d ON d.deployment_id = f.deployment_id"
    " WHERE f.function_name = %(name)s AND d.last_heartbeat > %(cutoff)s"
    " ORDER BY d.last_heartbeat DESC, d.deployment_id"
)
LIST_DEPLOYMENTS: Final = SQL(
    "SELECT deployment_id, endpoint, last_heartbeat FROM {deployments}"
    " WHERE last_heartbeat > %(cutoff)s ORDER BY last_heartbeat DESC, deployment_id"
)
PRUNE_DEPLOYMENTS: Final = SQL(
    "DELETE FROM {deployments} WHERE last_heartbeat <= %(cutoff)s RETURNING deployment_id"
)
