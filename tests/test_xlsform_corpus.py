"""Real XLSForms written by others (tests/data/xlsforms, listed in SOURCES.md with where each came from):
the forms our importer takes never become fewer, and every form it refuses — those pyxform itself
rejects included — is refused with a short Vietnamese FormError the form's author can act on.

The count only goes up: tests/data/xlsforms/RATCHET holds the figure reached; raise it when the
importer takes more (bench/xlsform_corpus.py prints the figure, each form's verdict and what blocks).
"""

from __future__ import annotations

from pathlib import PurePath

import pytest

from bench.xlsform_corpus import CORPUS, MEDIA, RATCHET, Import, Source, import_form, media_of, media_sources, sources

SOURCES = sources()
ACCEPTED = [source for source in SOURCES if source.pyxform_accepts]
REJECTED = [source for source in SOURCES if not source.pyxform_accepts]


@pytest.fixture(scope="module")
def imports() -> dict[str, Import]:
    return {source.file: import_form(CORPUS / source.file) for source in SOURCES}


def _refusals(imports: dict[str, Import], listed: list[Source]) -> list[str]:
    lines = []
    for source in listed:
        outcome = imports[source.file]
        if outcome.error is not None:
            lines.append(f"{source.file}: {outcome.error.reason} {outcome.error.value!r}")
        elif outcome.crash is not None:
            lines.append(f"{source.file}: {type(outcome.crash).__name__}: {outcome.crash}")
    return lines


def test_every_form_in_the_folder_is_listed_with_its_source() -> None:
    on_disk = sorted(path.relative_to(CORPUS).as_posix() for path in CORPUS.rglob("*.xls*"))
    assert on_disk == sorted(source.file for source in SOURCES)
    # issue 18 asks for at least 60 real forms that pyxform accepts
    assert len(ACCEPTED) >= 60
    for source in SOURCES:
        assert "/" in source.repository, source
        assert source.licence, source


def test_every_file_a_form_takes_is_listed_with_its_source() -> None:
    on_disk = sorted(path.relative_to(MEDIA).as_posix() for path in MEDIA.rglob("*") if path.is_file())
    listed = media_sources()
    assert on_disk == sorted(row.file for row in listed)
    forms = {source.file for source in SOURCES}
    for row in listed:
        assert row.form in forms, row
        # media/<stem>/ is found by the form's stem: no other form of the corpus may share it
        stem = PurePath(row.form).stem
        assert row.file.split("/")[0] == stem, row
        assert [form for form in forms if PurePath(form).stem == stem] == [row.form], row


def test_a_form_given_its_files_is_never_refused_for_one(imports: dict[str, Import]) -> None:
    given = [source for source in SOURCES if media_of(CORPUS / source.file)]
    assert given
    missing = [line for line in _refusals(imports, given) if ": missing_file " in line]
    assert missing == []


def test_the_forms_imported_never_become_fewer(imports: dict[str, Import]) -> None:
    imported = sum(imports[source.file].ok for source in ACCEPTED)
    floor = int(RATCHET.read_text())
    refused = "\n".join(_refusals(imports, ACCEPTED))
    assert imported >= floor, f"{imported} of {len(ACCEPTED)} forms import, RATCHET says {floor}:\n{refused}"


def test_every_refusal_is_a_short_form_error(imports: dict[str, Import]) -> None:
    crashes = {source.file: repr(imports[source.file].crash) for source in SOURCES if imports[source.file].crash}
    assert crashes == {}
    for source in SOURCES:
        error = imports[source.file].error
        if error is None:
            continue
        text = str(error)
        assert len(text.splitlines()) <= 3, (source.file, text)
        assert "Traceback" not in text, (source.file, text)
        assert 'File "' not in text, (source.file, text)  # no Python stack frame either
        assert source.file.rsplit("/", 1)[-1] in text, (source.file, text)  # the author learns which file


def test_forms_pyxform_rejects_are_refused(imports: dict[str, Import]) -> None:
    # a form ODK's own tool refuses must not reach villagers half-read, nor crash the import
    assert [source.file for source in REJECTED if imports[source.file].error is None] == []


def test_no_form_makes_a_python_warning(imports: dict[str, Import]) -> None:
    # openpyxl warns about workbooks saved by Google Sheets (no default style, gsf: properties); a
    # warning would land in the bot's log for every upload, where it means nothing to anyone
    warned = {source.file: imports[source.file].warnings for source in SOURCES if imports[source.file].warnings}
    assert warned == {}
