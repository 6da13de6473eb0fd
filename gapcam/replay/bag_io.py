"""rosbag2 reading and writing with ``rosbags``, set up so that real ``ros2 bag`` can use the files.

Why this module exists rather than calling ``rosbags`` directly everywhere:

* **One type store.** Standard messages come from the ``rosbags`` store of a ROS distribution;
  ``gapcam_msgs/msg/LaneChangeDecision`` is parsed at run time from the package's own ``.msg``
  file (:func:`decision_msg_path`), so the bag's embedded definition and hash can never drift
  from what ``rosidl`` builds for the node.
* **Metadata that the target distro reads.** Humble records sqlite3 and reads metadata up to
  version 8 with QoS profiles serialised as a YAML *string*; Jazzy and later record mcap with
  version 9 (QoS as a YAML list). :data:`BAG_VERSION` picks the matching version per storage.
* **Output that survives failures.** :class:`BagWriter` always *closes* (never aborts) the
  ``rosbags`` writer, so a replay stopped by a corrupt input, an error or Ctrl-C still leaves a
  bag with a valid ``metadata.yaml`` and storage file holding everything written so far.
* **One-line errors.** ``rosbags`` and the storage libraries raise many exception types for a
  missing, truncated or corrupt bag; :func:`open_reader` turns them into :class:`GapcamError`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gapcam.errors import GapcamError
from gapcam.stamps import stamp_ns  # noqa: F401 - re-exported for bag readers

STORAGES = ("mcap", "sqlite3")
#: rosbag2 metadata version per storage: sqlite3 for Humble (<= 8), mcap as Jazzy+ write it.
BAG_VERSION = {"sqlite3": 8, "mcap": 9}
#: ``rosbags`` type stores offered on the command line (message definitions of that distro).
DISTROS = ("humble", "jazzy", "kilted")
DEFAULT_DISTRO = "jazzy"

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
STRING = "std_msgs/msg/String"
DECISION = "gapcam_msgs/msg/LaneChangeDecision"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"

_MSG_REL = Path("gapcam_msgs") / "msg" / "LaneChangeDecision.msg"


def decision_msg_path() -> Path:
    """Where ``LaneChangeDecision.msg`` is: the one definition the node's package is built from.

    Looked up in the source tree (``ros2_ws/src``) first, then in installed ament prefixes (the
    venv's ``share/`` after ``scripts/build_msgs.sh``, or a sourced ROS workspace), so that the
    same code works from a checkout, a wheel-less install and on the robot.
    """
    candidates = [Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / _MSG_REL]
    prefixes = [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    candidates += [Path(p) / "share" / _MSG_REL for p in prefixes if p]
    for c in candidates:
        if c.is_file():
            return c
    raise GapcamError(
        "gapcam_msgs/msg/LaneChangeDecision.msg not found (looked in ros2_ws/src and "
        "share/ of the Python and ament prefixes); run from the repository or build gapcam_msgs"
    )


@functools.cache
def typestore(distro: str = DEFAULT_DISTRO) -> Any:
    """``rosbags`` type store of ``distro`` plus ``gapcam_msgs`` (cached: building it costs ~0.2 s)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    if distro not in DISTROS:
        raise GapcamError(f"unknown ROS distro {distro!r}; choose one of {', '.join(DISTROS)}")
    store = get_typestore(getattr(Stores, f"ROS2_{distro.upper()}"))
    path = decision_msg_path()
    store.register(get_types_from_msg(path.read_text(), DECISION))
    return store


def default_qos() -> list[Any]:
    """An explicit offered-QoS profile (reliable, volatile, keep last 10).

    Humble's player parses the profile string of every topic; an empty one is not what its
    recorder ever writes, so every connection gets this profile instead.
    """
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    zero = QosTime(0, 0)
    return [
        Qos(
            QosHistory.KEEP_LAST,
            10,
            QosReliability.RELIABLE,
            QosDurability.VOLATILE,
            zero,
            zero,
            QosLiveliness.AUTOMATIC,
            zero,
            False,
        )
    ]


# --------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TopicInfo:
    """One topic of an input bag."""

    name: str
    msgtype: str
    count: int


def open_reader(path: str | Path) -> Any:
    """Open a rosbag2 directory (or a single ``.mcap``/``.db3`` file) for reading.

    Raises :class:`GapcamError` with one line for everything a user can get wrong: no such path,
    not a bag, missing or broken ``metadata.yaml``, a storage file that cannot be opened.
    """
    from rosbags.rosbag2 import Reader

    p = Path(path)
    if not p.exists():
        raise GapcamError(f"{p}: no such bag (expected a rosbag2 directory or .mcap/.db3 file)")
    if p.is_dir() and not (p / "metadata.yaml").exists():
        files = sorted(p.glob("*.mcap")) + sorted(p.glob("*.db3"))
        if len(files) == 1:
            p = files[0]  # a bag whose recorder died before writing metadata.yaml
        else:
            raise GapcamError(
                f"{p}: not a rosbag2 directory (no metadata.yaml"
                + (f" and {len(files)} storage files" if files else " and no .mcap/.db3 file")
                + "); run `ros2 bag reindex` on it or pass the storage file"
            )
    if p.is_dir():
        _check_metadata(p)
    try:
        reader = Reader(p)
        reader.open()
    except Exception as exc:  # rosbags, sqlite, mcap and yaml errors: all mean "unreadable"
        recovered = _recover_mcap(p) or _recover_sqlite(p)
        if recovered is None:
            raise GapcamError(f"{p}: cannot open bag: {one_line(exc)}") from exc
        print(
            f"gapcam: warning: {recovered.path}: incomplete {recovered.kind} "
            f"({recovered.problem}); reading the {recovered.message_count} complete messages "
            "before it",
            file=sys.stderr,
        )
        return recovered
    return reader


#: Keys of ``rosbag2_bagfile_information`` every reader needs.
_METADATA_KEYS = (
    "version",
    "storage_identifier",
    "relative_file_paths",
    "topics_with_message_count",
    "duration",
    "starting_time",
    "message_count",
)


def _check_metadata(bag: Path) -> None:
    """Name ``metadata.yaml`` and the way out when it is garbled or incomplete.

    rosbags reports such a file as "'utf-8' codec can't decode ..." or "KeyError('version')",
    which names neither the file nor what to do; the recording itself is usually intact.
    """
    from ruamel.yaml import YAML

    path = bag / "metadata.yaml"
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        info = data["rosbag2_bagfile_information"] if isinstance(data, dict) else None
        if not isinstance(info, dict):
            problem = "no 'rosbag2_bagfile_information' section"
        else:
            missing = [k for k in _METADATA_KEYS if k not in info]
            problem = f"missing key(s) {', '.join(missing)}" if missing else ""
    except UnicodeDecodeError:
        problem = "not UTF-8 text (garbled)"
    except KeyError:
        problem = "no 'rosbag2_bagfile_information' section"
    except OSError as exc:
        problem = f"unreadable ({one_line(exc)})"
    except Exception as exc:  # ruamel's YAMLError family
        problem = f"not valid YAML ({one_line(exc)[:120]})"
    if not problem:
        return
    files = sorted(bag.glob("*.mcap")) + sorted(bag.glob("*.db3"))
    fix = (
        f"the recording is in {files[0]}: pass that file instead, or move metadata.yaml aside "
        f"and run `ros2 bag reindex {bag}`"
        if len(files) == 1
        else f"restore it from the original recording or run `ros2 bag reindex {bag}`"
    )
    raise GapcamError(f"{path}: cannot be read: {problem}; {fix}")


def _recover_mcap(p: Path) -> Any:
    """A :class:`RecoveredMcapReader` for a truncated mcap bag, or ``None`` if that is no help."""
    from gapcam.replay.mcap_recover import RecoveredMcapReader

    files = sorted(p.glob("*.mcap")) if p.is_dir() else [p]
    if len(files) != 1 or files[0].suffix != ".mcap" or not files[0].is_file():
        return None
    reader = RecoveredMcapReader(files[0])
    return reader if reader.message_count and reader.problem else None


def _recover_sqlite(p: Path) -> Any:
    """A :class:`RecoveredSqliteReader` for a truncated ``.db3``, or ``None`` if no help."""
    from gapcam.replay.sqlite_recover import RecoveredSqliteReader

    files = sorted(p.glob("*.db3")) if p.is_dir() else [p]
    if len(files) != 1 or files[0].suffix != ".db3" or not files[0].is_file():
        return None
    try:
        reader = RecoveredSqliteReader(files[0])
    except Exception:  # not even the topics table survived: nothing to recover
        return None
    return reader if reader.message_count else None


def list_topics(reader: Any) -> list[TopicInfo]:
    """Topics of an open bag, sorted by name."""
    return [
        TopicInfo(name, info.msgtype or "?", int(info.msgcount))
        for name, info in sorted(reader.topics.items())
    ]


def iter_messages(reader: Any, connections: list[Any]) -> Iterator[tuple[Any, int, bytes]]:
    """``reader.messages`` with storage-level failures turned into :class:`BagCorruptError`."""
    it = reader.messages(connections=connections)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except Exception as exc:  # truncated mcap chunk, sqlite "database disk image is malformed"
            raise BagCorruptError(one_line(exc)) from exc
        yield item


class BagCorruptError(GapcamError):
    """The input bag ended early or holds a corrupt record; earlier messages were fine."""


def one_line(exc: BaseException) -> str:
    """An exception as one short line (type name when the message is empty)."""
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


# --------------------------------------------------------------------------------------- writing


class BagWriter:
    """A rosbag2 writer that adds connections on first use and always leaves a readable bag.

    Use as a context manager or call :meth:`close` in ``finally``: unlike ``rosbags.Writer``'s
    own ``__exit__`` (which aborts on an exception), this closes the storage and writes
    ``metadata.yaml`` whatever happened, because a partial replay is still worth having.
    """

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        *,
        distro: str = DEFAULT_DISTRO,
        version: int | None = None,
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise GapcamError(f"unknown storage {storage!r}; choose mcap or sqlite3")
        self.path = Path(path)
        if self.path.exists():
            raise GapcamError(f"{self.path}: already exists; choose a new output path")
        self.storage = storage
        self.store = typestore(distro)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(
            self.path, version=version or BAG_VERSION[storage], storage_plugin=plugin
        )
        self._writer.open()
        self._connections: dict[tuple[str, str], Any] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    def connection(
        self, topic: str, msgtype: str, msgdef: str | None = None, digest: str | None = None
    ) -> Any:
        """The connection for (topic, type), added on first use.

        ``msgdef``/``digest`` carry an input bag's own definition through unchanged when copying
        a topic; otherwise the definition comes from the type store.
        """
        key = (topic, msgtype)
        conn = self._connections.get(key)
        if conn is None:
            kwargs: dict[str, Any] = {"offered_qos_profiles": default_qos()}
            if msgdef and digest:
                kwargs.update(msgdef=msgdef, rihs01=digest)
            elif msgtype in self.store.fielddefs:
                kwargs["typestore"] = self.store
            else:
                raise GapcamError(
                    f"{topic}: unknown message type {msgtype} (not in the type store and no "
                    "definition in the bag)"
                )
            conn = self._writer.add_connection(topic, msgtype, **kwargs)
            self._connections[key] = conn
            self.counts[topic] = 0
        return conn

    def write_raw(
        self,
        topic: str,
        msgtype: str,
        data: bytes | memoryview,
        stamp: int,
        msgdef: str | None = None,
        digest: str | None = None,
    ) -> None:
        """Write an already CDR-serialised message (e.g. copied from the input bag)."""
        self._writer.write(self.connection(topic, msgtype, msgdef, digest), int(stamp), data)
        self.counts[topic] += 1

    def write(self, topic: str, msgtype: str, msg: Any, stamp: int) -> None:
        """Serialise ``msg`` (a type-store message object) to CDR and write it."""
        self.write_raw(topic, msgtype, self.store.serialize_cdr(msg, msgtype), stamp)

    def set_custom_data(self, key: str, value: Any) -> None:
        """Record provenance (model id, input bag, ...) in ``metadata.yaml``'s ``custom_data``."""
        self._writer.set_custom_data(key, value if isinstance(value, str) else json.dumps(value))

    def close(self) -> None:
        """Finish the storage file and write ``metadata.yaml`` (idempotent)."""
        if not self.closed:
            self.closed = True
            try:
                self._writer.close()
            except OSError as exc:  # a full disk while writing the summary or metadata.yaml
                raise GapcamError(
                    f"{self.path}: cannot finish the bag ({one_line(exc)}); free space and replay "
                    "again"
                ) from exc

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` of a bag directory (for checks and reports)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load((Path(path) / "metadata.yaml").read_text())
    return data["rosbag2_bagfile_information"]
