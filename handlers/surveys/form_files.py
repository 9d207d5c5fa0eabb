"""The files an XLSForm's choices come from (select_one_from_file's CSV or XML, given with
`langso survey import FORM --media DIR`) and how they are kept with the form.

They are packed into SurveyForm.content with the workbook rather than kept in a table of their own:
one row per form keeps replacing an import a single write, the catalog's cheap "anything new?" query
and every process's reading unchanged, and these files are choice lists of a few kilobytes. A form
without such files is stored as the workbook itself, as before.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml.ElementTree import fromstring  # pyxform's own dependency: no entity expansion from a file

# the entry that tells a pack from a workbook (an .xlsx is a zip file too)
_MARK = "langso-form/"
_FORM = _MARK + "form"
_MEDIA = _MARK + "media/"

Row = dict[str, str]


def pack(content: bytes, media: Mapping[str, bytes]) -> bytes:
    if not media:
        return content
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(_FORM, content)
        for name in sorted(media):
            bundle.writestr(_MEDIA + name, media[name])
    return out.getvalue()


def unpack(content: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The workbook and its files, from what `pack` made."""
    if not zipfile.is_zipfile(io.BytesIO(content)):
        return content, {}
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        names = bundle.namelist()
        if _FORM not in names:
            return content, {}  # a workbook
        media = {name.removeprefix(_MEDIA): bundle.read(name) for name in names if name.startswith(_MEDIA)}
        return bundle.read(_FORM), media


class FileProblem(Exception):
    """`reason`: missing_file (not given at import) or bad_file (not a CSV or XML list of choices)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def choice_rows(filename: str, media: Mapping[str, bytes]) -> list[Row]:
    """The rows of a choices file as ODK reads them: a CSV with a header, an XML <root><item>…</item>, or
    a GeoJSON's features (name: the `id` property or the feature's id; label: the `title` property)."""
    content = media.get(filename)
    if content is None:
        raise FileProblem("missing_file")
    try:
        text = content.decode("utf-8-sig")
        suffix = PurePath(filename).suffix.lower()
        if suffix == ".geojson":
            return [_feature(feature) for feature in json.loads(text).get("features", ())]
        if suffix == ".xml":
            return [{child.tag: (child.text or "").strip() for child in item} for item in fromstring(text)]
        rows = csv.DictReader(io.StringIO(text))
        return [{key.strip(): (value or "").strip() for key, value in row.items() if key} for row in rows]
    # ValueError: not UTF-8, not JSON, or defusedxml's refusals
    except (ValueError, AttributeError, csv.Error, ParseError) as error:
        raise FileProblem("bad_file") from error


def _feature(feature: Mapping[str, Any]) -> Row:
    properties = {key: str(value) for key, value in (feature.get("properties") or {}).items() if value is not None}
    name = properties.pop("id", None) or str(feature.get("id", ""))
    return {"name": name, "label": properties.pop("title", "") or name, **properties}
