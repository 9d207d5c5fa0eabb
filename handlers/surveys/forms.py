"""Reading a survey file — our TOML or an ODK/KoBoToolbox XLSForm (.xlsx) — into a `Survey`.

Whoever wrote the form gets every problem as a FormError naming the file, sheet, row and column, so
they can fix it in Excel without reading code. Our own row-by-row checks run before pyxform's, because
they know those positions and pyxform's messages are English and about XForms.
"""


from __future__ import annotations

from pathlib import PurePath

from handlers.surveys.definition import Survey
from handlers.surveys.form_rows import FormError
from handlers.surveys.toml_form import load_toml

__all__ = ["FormError", "load_survey"]


def load_survey(filename: str, content: bytes) -> Survey:
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".toml":
        return load_toml(filename, content)
    if suffix == ".xlsx":
        # pyxform and openpyxl cost ~45 MB: a bot running only TOML surveys never loads them
        from handlers.surveys.xlsform import load_xlsform

        return load_xlsform(filename, content)
    raise FormError(source=filename, reason="unknown_format", value=suffix)


