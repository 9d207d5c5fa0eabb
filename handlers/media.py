"""What files a notice may carry: size and type limits, checked when the notice is written (from what
the platform says of the file) and again on the bytes when the file is fetched for another platform."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import PurePosixPath

from handlers.chat import Attachment

MB = 1024 * 1024
ROUTE = "/tep-dinh-kem"  # {ROUTE}/{link id}/{token}/{file name}: where the bot's web server serves stored files
# Telegram takes photo uploads up to 10 MB and lets a bot download files up to 20 MB (getFile): a file
# beyond these could not be carried to the other platform, so it is refused where it is written
MAX_BYTES = {"photo": 10 * MB, "document": 20 * MB}
# documents people in a commune pass around; anything else (an .apk above all, the usual scam in
# village groups) is refused rather than relayed into every village
DOCUMENT_TYPES = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


@dataclass(frozen=True)
class Refusal:
    """Why a file is not taken: rendered with the `media_refused` template."""

    reason: str  # "too_large" | "type"
    size_mb: float = 0.0
    limit_mb: int = 0
    extension: str = ""

    def values(self) -> dict[str, object]:
        return {"reason": self.reason, "size_mb": self.size_mb, "limit_mb": self.limit_mb, "extension": self.extension}


def refusal(kind: str, size: int, mime: str = "", filename: str = "") -> Refusal | None:
    """None if a file of this kind, size (0: not known yet) and type ("": not known yet) may go into a
    notice."""
    if kind not in MAX_BYTES:  # a voice note, a video: notices carry photos and documents only
        return Refusal("type", extension=PurePosixPath(filename).suffix.lower())
    limit = MAX_BYTES[kind]
    if size > limit:
        return Refusal("too_large", size_mb=round(size / MB, 1), limit_mb=limit // MB)
    if kind == "document" and mime_of(filename, mime) not in DOCUMENT_TYPES.values():
        return Refusal("type", extension=PurePosixPath(filename).suffix.lower())
    if kind == "photo" and mime and mime not in PHOTO_TYPES:  # e.g. an error page where a photo was
        return Refusal("type", extension=PurePosixPath(filename).suffix.lower())
    return None


def refusal_of(attachment: Attachment) -> Refusal | None:
    return refusal(attachment.kind, attachment.size, attachment.mime, attachment.filename)


def mime_of(filename: str, given: str = "") -> str:
    """The type by the file's extension where the list knows it (a platform's own type may be vague:
    "application/octet-stream"), else the type the platform gave."""
    known = DOCUMENT_TYPES.get(PurePosixPath(filename).suffix.lower())
    return known or given or mimetypes.guess_type(filename)[0] or "application/octet-stream"
