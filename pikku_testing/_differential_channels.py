"""Differential rules over channels, topic subscriptions and deployments (Spec: 03)."""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from pikku_storage import Channel, DeploymentConfig, JsonValue, Storage
from pikku_testing._differential_core import Harness, Translate
from pikku_testing._differential_values import JSON, JSON_OBJECTS

__all__ = ["ChannelRules", "DeploymentRules"]

CHANNEL_IDS: Final = ("ch1", "ch2", "ch3", "ch4")
TOPICS: Final = ("t-a", "t-b")
FUNCTIONS: Final = ("f1", "f2", "f3")
_CHANNELS: Final = precondition(lambda self: self.has("channel"))


class ChannelRules(Harness):
    """Channels, sessions, liveness and prunes, subscriptions."""

    @initialize()
    def seed_channel(self) -> None:
        """Every sequence starts with channel `ch1`, so channel rules have a target."""

        async def add(s: Storage, tr: Translate) -> object:
            await s.channels.add_channel(Channel(channel_id="ch1", channel_name="chat"))
            return None

        self.both("add_channel('ch1', 'chat') [seed]", add)
        self.remember("channel", "ch1")

    @rule(
        channel_id=st.sampled_from(CHANNEL_IDS),
        name=st.sampled_from(["chat", "feed"]),
        opening=JSON,
    )
    def add_channel(self, channel_id: str, name: str, opening: JsonValue) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            channel = Channel(channel_id=channel_id, channel_name=name, opening_data=opening)
            await s.channels.add_channel(channel)
            return None

        self.both(f"add_channel({channel_id!r}, {name!r})", op)
        self.remember("channel", channel_id)  # it exists now, new or conflicting

    @rule(ids=st.lists(st.sampled_from([*CHANNEL_IDS, "ch-x"]), max_size=3))
    def remove_channels(self, ids: list[str]) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            await s.channels.remove_channels(iter(ids))
            return None

        self.both(f"remove_channels({ids!r})", op)
        for channel_id in ids:
            self.forget("channel", channel_id)

    @_CHANNELS
    @rule(data=st.data(), session=st.none() | JSON_OBJECTS)
    def set_user_session(self, data: st.DataObject, session: dict[str, JsonValue] | None) -> None:
        channel_id = self.pick(data, "channel")

        async def op(s: Storage, tr: Translate) -> object:
            await s.channels.set_user_session(channel_id, session)
            return None

        self.both(f"set_user_session({channel_id!r}, {session!r})", op)

    @_CHANNELS
    @rule(data=st.data(), touch=st.booleans())
    def channel_read_or_touch(self, data: st.DataObject, touch: bool) -> None:
        channel_id = self.pick(data, "channel")

        async def op(s: Storage, tr: Translate) -> object:
            if touch:
                await s.channels.touch(channel_id)
                return None
            return await s.channels.get_channel_and_session(channel_id)

        self.both(f"{'touch' if touch else 'get_channel_and_session'}({channel_id!r})", op)

    @rule(
        offset=st.sampled_from([-60, -1, 0, 0.001, 1, 60]),
        limit=st.sampled_from([None, 1, 2]),
    )
    def prune_channels(self, offset: float, limit: int | None) -> None:
        cutoff = self.at(offset)

        async def op(s: Storage, tr: Translate) -> object:
            return await s.channels.prune_channels(last_seen_before=cutoff, limit=limit)

        for channel_id in self.both(f"prune_channels({cutoff.isoformat()}, {limit!r})", op):
            self.forget("channel", channel_id)

    @_CHANNELS
    @rule(
        data=st.data(),
        topic=st.sampled_from(TOPICS),
        action=st.sampled_from(["subscribe", "unsubscribe", "list"]),
    )
    def eventhub(self, data: st.DataObject, topic: str, action: str) -> None:
        channel_id = self.pick(data, "channel")

        async def op(s: Storage, tr: Translate) -> object:
            if action == "subscribe":
                return await s.eventhub.subscribe(topic, channel_id)
            if action == "unsubscribe":
                return await s.eventhub.unsubscribe(topic, channel_id)
            return await s.eventhub.get_channel_ids_for_topic(topic)

        self.both(f"{action}({topic!r}, {channel_id!r})", op)


class DeploymentRules(Harness):
    """One deployment instance per side: start, heartbeat, stop and the liveness reads.

    The heartbeat task never fires during a run (its interval is an hour of real time); the
    shared clock decides liveness.
    """

    @rule(
        deployment_id=st.sampled_from(["d1", "d2"]),
        endpoint=st.sampled_from(["http://a:1", "http://b:2"]),
        functions=st.lists(st.sampled_from(FUNCTIONS), max_size=4),
    )
    def start(self, deployment_id: str, endpoint: str, functions: list[str]) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            config = DeploymentConfig(
                deployment_id=deployment_id, endpoint=endpoint, functions=list(functions)
            )
            await s.deployments.start(config)
            return None

        self.both(f"start({deployment_id!r}, {endpoint!r}, {functions!r})", op)

    @rule(action=st.sampled_from(["heartbeat", "stop", "list", "prune"]))
    def deployment_action(self, action: str) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            service = s.deployments
            if action == "heartbeat":
                await service.heartbeat()
                return None
            if action == "stop":
                await service.stop()
                return None
            if action == "list":
                return await service.list_deployments()
            return await service.prune_deployments()

        self.both(f"deployments.{action}()", op)

    @rule(name=st.sampled_from([*FUNCTIONS, "f-x"]))
    def find_function(self, name: str) -> None:
        async def op(s: Storage, tr: Translate) -> object:
            return await s.deployments.find_function(name)

        self.both(f"find_function({name!r})", op)
