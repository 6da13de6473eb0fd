"""Take a serialized camera message into one buffer that is reused for every frame.

Why: ``Subscription.take_message(raw=True)`` allocates a fresh serialized-message buffer for each
take (the rmw copies the 2.7 MB of a 1280x720 frame into it) and then copies it again into a new
Python ``bytes``: two allocations of the frame's size and one copy more than needed, per frame.
This calls ``rcl_take_serialized_message`` (the C function rclpy calls) through ``ctypes`` with a
``rcl_serialized_message_t`` kept across frames, so after the first frame the rmw copies into
memory that is already there, and the worker reads the pixels in place (README "Performance").
``ctypes`` releases the GIL for the call, as rclpy does.

Only the stable head of the C structs is read: ``rcutils_uint8_array_t`` (buffer, length,
capacity, allocator) and the first fields of ``rmw_message_info_t`` (two timestamps, two sequence
numbers, the publisher GID's first 16 bytes); the struct is over-allocated for the rest, whose
size differs between distributions. Where librcl cannot be loaded this way
:func:`open_serialized_take` returns ``None`` and the caller keeps ``take_message``.

The buffer belongs to the one thread that takes (the worker): a view returned by :meth:`take`
is valid until the next :meth:`take` or :meth:`close`.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

#: rcl_ret_t values (rcl/types.h).
RCL_RET_OK = 0
RCL_RET_SUBSCRIPTION_TAKE_FAILED = 401


class _Allocator(ctypes.Structure):
    """``rcutils_allocator_t``."""

    _fields_ = [
        ("allocate", ctypes.c_void_p),
        ("deallocate", ctypes.c_void_p),
        ("reallocate", ctypes.c_void_p),
        ("zero_allocate", ctypes.c_void_p),
        ("state", ctypes.c_void_p),
    ]


class _Uint8Array(ctypes.Structure):
    """``rcutils_uint8_array_t`` = ``rcl_serialized_message_t``."""

    _fields_ = [
        ("buffer", ctypes.c_void_p),
        ("buffer_length", ctypes.c_size_t),
        ("buffer_capacity", ctypes.c_size_t),
        ("allocator", _Allocator),
    ]


class _MessageInfo(ctypes.Structure):
    """The head of ``rmw_message_info_t``; ``_rest`` covers the GID's size on every distribution
    (24 bytes on Humble, 16 later) and the fields after it."""

    _fields_ = [
        ("source_timestamp", ctypes.c_int64),
        ("received_timestamp", ctypes.c_int64),
        ("publication_sequence_number", ctypes.c_uint64),
        ("reception_sequence_number", ctypes.c_uint64),
        ("gid_implementation", ctypes.c_void_p),
        ("gid_data", ctypes.c_uint8 * 16),
        ("_rest", ctypes.c_uint8 * 128),
    ]


@dataclass(frozen=True)
class _Libraries:
    take: Any  #: rcl_take_serialized_message
    array_init: Any  #: rcutils_uint8_array_init
    array_fini: Any  #: rcutils_uint8_array_fini
    default_allocator: Any  #: rcutils_get_default_allocator
    reset_error: Any  #: rcutils_reset_error


def _load() -> _Libraries | None:
    """librcl and librcutils as rclpy already loaded them (same process, same copies)."""
    try:
        rcl = ctypes.CDLL("librcl.so")
        rcutils = ctypes.CDLL("librcutils.so")
        take = rcl.rcl_take_serialized_message
        init = rcutils.rcutils_uint8_array_init
        fini = rcutils.rcutils_uint8_array_fini
        allocator = rcutils.rcutils_get_default_allocator
        reset = rcutils.rcutils_reset_error
    except (OSError, AttributeError):
        return None
    take.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_Uint8Array),
        ctypes.POINTER(_MessageInfo),
        ctypes.c_void_p,
    ]
    take.restype = ctypes.c_int32
    init.argtypes = [ctypes.POINTER(_Uint8Array), ctypes.c_size_t, ctypes.POINTER(_Allocator)]
    init.restype = ctypes.c_int32
    fini.argtypes = [ctypes.POINTER(_Uint8Array)]
    fini.restype = ctypes.c_int32
    allocator.argtypes = []
    allocator.restype = _Allocator
    reset.argtypes = []
    reset.restype = None
    return _Libraries(take, init, fini, allocator, reset)


class SerializedTake:
    """``rcl_take_serialized_message`` on one rclpy subscription into a kept buffer."""

    def __init__(self, subscription: Any, libs: _Libraries, capacity: int = 0) -> None:
        self._sub = subscription
        self._libs = libs
        self._msg = _Uint8Array()
        self._info = _MessageInfo()
        allocator = libs.default_allocator()
        if libs.array_init(ctypes.byref(self._msg), capacity, ctypes.byref(allocator)) != 0:
            raise MemoryError(f"could not allocate a {capacity}-byte serialized message")
        self._open = True

    def take(self) -> tuple[memoryview, dict[str, Any]] | None:
        """The next message (a view into the kept buffer) and its info, or ``None`` if none.

        The info has the keys rclpy's ``take_message`` gives (``received_timestamp``,
        ``publication_sequence_number``, ``publisher_gid``...). ``RuntimeError`` if rcl fails.
        """
        if not self._open:
            raise RuntimeError("take() after close()")
        handle = self._sub.handle
        with handle:  # keeps the rcl subscription alive for the call, as rclpy does
            ret = self._libs.take(
                handle.pointer, ctypes.byref(self._msg), ctypes.byref(self._info), None
            )
        if ret == RCL_RET_SUBSCRIPTION_TAKE_FAILED:
            return None
        if ret != RCL_RET_OK:
            self._libs.reset_error()
            raise RuntimeError(f"rcl_take_serialized_message failed (rcl_ret_t {ret})")
        length = self._msg.buffer_length
        view = memoryview((ctypes.c_uint8 * length).from_address(self._msg.buffer))
        data = view.cast("B").toreadonly()
        info = self._info
        return data, {
            "source_timestamp": info.source_timestamp,
            "received_timestamp": info.received_timestamp,
            "publication_sequence_number": info.publication_sequence_number,
            "publisher_gid": {"data": bytes(info.gid_data)},
        }

    def close(self) -> None:
        """Free the buffer; views from :meth:`take` must no longer be used."""
        if self._open:
            self._open = False
            self._libs.array_fini(ctypes.byref(self._msg))


def open_serialized_take(subscription: Any) -> SerializedTake | None:
    """A :class:`SerializedTake` for ``subscription`` (created with ``raw=True``), or ``None``
    where librcl cannot be reached through ``ctypes``."""
    libs = _load()
    return None if libs is None else SerializedTake(subscription, libs)
