"""Python values <-> the MessagePack that Flask-Session 0.8 (msgspec) writes.

str, int, float, bool, None, bytes (and bytearray), list and tuple (as arrays), dict and
timezone-aware datetime (as MessagePack timestamps). Subclasses of these are stored as the
base type: Flask's Markup, a str subclass, reads back as a plain str, a tuple as a list, an
IntEnum as an int.
"""

import msgpack

from ._errors import CodecError

_ACCEPTED = (
    "str, int, float, bool, None, bytes, list, tuple, dict or a timezone-aware datetime"
)


def pack(key, value):
    """One session value as MessagePack; a TypeError naming the key for anything else."""
    try:
        return msgpack.packb(value, use_bin_type=True, datetime=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise TypeError(
            f"session value {key!r} cannot be stored: {error} (a session holds {_ACCEPTED})"
        ) from error


def unpack(key, data):
    """A stored value; a CodecError naming the key if it is not MessagePack Python reads."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3)
    except (ValueError, msgpack.UnpackException) as error:
        raise CodecError(f"session value {key!r} cannot be decoded: {error}") from error
