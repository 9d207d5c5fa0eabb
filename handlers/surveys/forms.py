"""Reading a survey file — our TOML or an ODK/KoBoToolbox XLSForm (.xlsx, .xls) — into a `Survey`.

Whoever wrote the form gets every problem as a FormError naming the file, sheet, row and column, so
they can fix it in Excel without reading code. An XLSForm is read through pyxform, which refuses what
ODK would; our own checks are only for what cannot be asked over chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from handlers.surveys.definition import Survey
from handlers.surveys.form_rows import FormError
from handlers.surveys.toml_form import load_toml

__all__ = ["SUFFIXES", "FormError", "load_survey"]

SUFFIXES = (".toml", ".xlsx", ".xls", ".xlsm")


def load_survey(filename: str, content: bytes, media: Mapping[str, bytes] | None = None) -> Survey:
    """`media`: the files an XLSForm names (select_one_from_file's lists), by file name."""
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".toml":
        return load_toml(filename, content)
    if suffix in SUFFIXES:
        # pyxform and openpyxl cost ~45 MB: a bot running only TOML surveys never loads them
        from handlers.surveys.xlsform import load_xlsform

        return load_xlsform(filename, content, media)
    raise FormError(source=filename, reason="unknown_format", value=suffix)
