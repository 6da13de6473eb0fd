"""What the readers of damaged bags (mcap and sqlite3) share: rosbags connections and topics.

Each recovered reader finds its topics, types and message definitions its own way (mcap schema
and channel records, sqlite3 rows read from the pages); from there they look the same to replay
as rosbags' own readers, built here once.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class TopicInfo(NamedTuple):
    """``reader.topics[name]`` as rosbags' readers give it."""

    msgtype: str
    msgdef: Any
    msgcount: int
    connections: list[Any]


def recovered_connection(
    owner: Any,
    conn_id: int,
    topic: str,
    msgtype: str,
    definition: tuple[str, str],
    msgcount: int,
    serialization: str = "cdr",
) -> Any:
    """A rosbags ``Connection`` for one topic; ``definition`` is (encoding, text) as stored."""
    from rosbags.interfaces import (
        Connection,
        ConnectionExtRosbag2,
        MessageDefinition,
        MessageDefinitionFormat,
    )

    fmt = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL}
    encoding, text = definition
    return Connection(
        id=conn_id,
        topic=topic,
        msgtype=msgtype,
        msgdef=MessageDefinition(fmt.get(encoding, MessageDefinitionFormat.NONE), text),
        digest="",
        msgcount=msgcount,
        ext=ConnectionExtRosbag2(serialization_format=serialization, offered_qos_profiles=[]),
        owner=owner,
    )


class RecoveredTopics:
    """``topics`` from ``connections``, for the recovered readers."""

    connections: list[Any]

    @property
    def topics(self) -> dict[str, TopicInfo]:
        return {c.topic: TopicInfo(c.msgtype, c.msgdef, c.msgcount, [c]) for c in self.connections}
