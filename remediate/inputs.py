"""Reading the files users hand to remediate (policy and plan files) as bounded, checked input.

Files are read up to a size limit (devices are refused: /dev/zero never ends), and text must be
UTF-8: a binary file or another encoding is one line naming the file and the line of the first
bad byte, never a traceback from deep inside a parser.
"""

from __future__ import annotations

import stat
from pathlib import Path

from remediate.errors import RemediateError

_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def read_bytes(
    path: Path, what: str, limit: int, error: type[RemediateError] = RemediateError
) -> bytes:
    """The content of `path` (`what` names it in errors), refused beyond `limit` bytes: a pipe
    (`-p <(...)`) is read like a file, a device (/dev/zero never ends) is refused."""
    try:
        if stat.S_ISCHR(path.stat().st_mode) or stat.S_ISBLK(path.stat().st_mode):
            raise error(f"{path}: cannot read {what}: a device, not a file")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{path}: {what} too large (over {limit // 1024 // 1024} MiB)")
    return data


def decode_text(
    data: bytes, source: str, what: str, error: type[RemediateError] = RemediateError
) -> str:
    """`data` as UTF-8 text (a leading byte order mark dropped); a NUL byte, another encoding or
    invalid UTF-8 is an error naming `source` and the line of the first bad byte."""
    encoding = _BOMS.get(data[:2])
    if encoding is not None:
        raise error(f"{source}: {what} is {encoding} text; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise error(f"{source}:{line}: a binary file (NUL byte), not {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{source}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from None
