"""Real XLSForms written by others (tests/data/xlsforms, each listed in its SOURCES.md): of the forms
pyxform accepts, how many our importer takes, and what blocks the others.

    .venv/bin/python bench/xlsform_corpus.py            # a line per form, then the totals
    .venv/bin/python bench/xlsform_corpus.py --blocked  # only the forms pyxform accepts and we refuse

Each form goes through pyxform's own convert (what ODK Central or KoBoToolbox would do with it) and
through our load_survey, given the files it takes its choices from (media/<form's stem>/, listed in
SOURCES.md) as `langso survey import FORM --media DIR` gives them. Printed per form: pyxform's
verdict, ours, and our FormError's reason and value; then the totals: forms pyxform accepts N,
imported by us M, M/N, how many forms were given files, the reasons that block (counted, with their
commonest values), how the forms pyxform rejects were refused, and the forms whose import made Python
warnings (openpyxl's UserWarnings about a workbook reach whoever runs the bot's
log, so they are recorded per form and counted here instead of being printed as they come).
A verdict of pyxform that differs from the one SOURCES.md records is printed too (pyxform is not
pinned; SOURCES.md records 4.5's). tests/test_xlsform_corpus.py keeps the count from falling.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyxform.xls2xform import convert

from handlers.surveys.forms import FormError, load_survey

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "xlsforms"
SOURCES = CORPUS / "SOURCES.md"
MEDIA = CORPUS / "media"
RATCHET = CORPUS / "RATCHET"
_ACCEPTS = "accepts"


@dataclass(frozen=True)
class Source:
    """One row of SOURCES.md: where a form came from, and whether pyxform 4.5 accepts it."""

    file: str  # relative to CORPUS
    repository: str
    path: str
    commit: str
    licence: str
    pyxform: str  # "accepts", or "rejects: " and pyxform's reason

    @property
    def pyxform_accepts(self) -> bool:
        return self.pyxform == _ACCEPTS


@dataclass(frozen=True)
class Import:
    """What our importer made of one form: imported (both None), refused (`error`), or a bug (`crash`)."""

    error: FormError | None
    crash: Exception | None
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.error is None and self.crash is None


def sources() -> list[Source]:
    """The table's rows, in its order. A cell never holds "|" (paths are written with "/")."""
    rows = []
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 6:
            rows.append(Source(*cells))
    return rows


@dataclass(frozen=True)
class MediaSource:
    """One row of SOURCES.md's table of files: a file a form takes its choices from, and where it came from."""

    form: str  # relative to CORPUS
    file: str  # relative to MEDIA
    repository: str
    path: str
    commit: str


def media_sources() -> list[MediaSource]:
    """The rows of the files' table (five cells; a form's row has six)."""
    rows = []
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            rows.append(MediaSource(*cells))
    return rows


def media_of(path: Path) -> dict[str, bytes]:
    """The files a form is imported with, by file name: those in media/<its stem>/ (none for most forms)."""
    folder = MEDIA / path.stem
    return {file.name: file.read_bytes() for file in sorted(folder.iterdir())} if folder.is_dir() else {}


def import_form(path: Path) -> Import:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            load_survey(path.name, path.read_bytes(), media_of(path))
        except FormError as error:
            return Import(error, None, _messages(caught))
        except Exception as crash:  # a bug of ours, which the report and the test name
            return Import(None, crash, _messages(caught))
    return Import(None, None, _messages(caught))


def pyxform_verdict(path: Path) -> str:
    """What pyxform says: "accepts", or "rejects: " and the first line of what it raised (a crash of
    pyxform's own, e.g. a TypeError, is a rejection too: ODK's tools would refuse the form the same way)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyxform's reading of the workbook warns as ours does; counted once, for ours
        try:
            convert(xlsform=str(path), warnings=[])
        except Exception as error:
            reason = (str(error).strip().splitlines() or [""])[0]
            return f"rejects: {type(error).__name__}: {reason}"
    return _ACCEPTS


def _messages(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(f"{warning.category.__name__}: {warning.message}" for warning in caught)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocked", action="store_true", help="list only the forms pyxform accepts and we refuse")
    arguments = parser.parse_args()

    listed = sources()
    started = time.perf_counter()
    verdicts = {source.file: pyxform_verdict(CORPUS / source.file) for source in listed}
    pyxform_seconds = time.perf_counter() - started
    started = time.perf_counter()
    imports = {source.file: import_form(CORPUS / source.file) for source in listed}
    our_seconds = time.perf_counter() - started

    width = max(len(source.file) for source in listed)
    print(f"{'form':<{width}}  pyxform  ours   reason              value")
    for source in listed:
        accepted = verdicts[source.file] == _ACCEPTS
        outcome = imports[source.file]
        if arguments.blocked and (not accepted or outcome.ok):
            continue
        ours, reason, value = "ok", "", ""
        if outcome.error is not None:
            ours, reason, value = "no", outcome.error.reason, outcome.error.value
        elif outcome.crash is not None:
            ours, reason, value = "CRASH", type(outcome.crash).__name__, str(outcome.crash)
        print(f"{source.file:<{width}}  {'ok' if accepted else 'no':<7}  {ours:<5}  {reason:<18}  {_shorten(value, 60)}")

    accepted_files = [source.file for source in listed if verdicts[source.file] == _ACCEPTS]
    rejected_files = [source.file for source in listed if verdicts[source.file] != _ACCEPTS]
    imported = [file for file in accepted_files if imports[file].ok]
    share = len(imported) / len(accepted_files) if accepted_files else 0.0
    print()
    print(f"forms: {len(listed)} ({sum(file.endswith('.xls') for file in verdicts)} .xls)")
    print(f"accepted by pyxform: {len(accepted_files)}")
    print(f"imported by us: {len(imported)} = {share:.1%} of those (RATCHET: {RATCHET.read_text().strip()})")
    given = [source.file for source in listed if media_of(CORPUS / source.file)]
    print(f"forms given their choices' files from media/: {len(given)}, imported {sum(imports[f].ok for f in given)}")

    blocking: Counter[str] = Counter()
    values: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for file in accepted_files:
        outcome = imports[file]
        if outcome.error is not None:
            blocking[outcome.error.reason] += 1
            error = outcome.error  # an empty value (a blank cell) is told by where it is
            values[error.reason][_shorten(error.value, 30) or f"{error.sheet}.{error.column}"] += 1
        elif outcome.crash is not None:
            blocking[f"CRASH {type(outcome.crash).__name__}"] += 1
    print("what blocks the forms pyxform accepts (reason: forms; commonest values):")
    for reason, count in sorted(blocking.items(), key=lambda item: (-item[1], item[0])):
        common = ", ".join(f"{value} ×{n}" for value, n in values[reason].most_common(4))
        print(f"  {reason}: {count}" + (f"  [{common}]" if common else ""))

    refused_cleanly = sum(imports[file].error is not None for file in rejected_files)
    print(f"rejected by pyxform: {len(rejected_files)}; refused by us with a FormError: {refused_cleanly}")
    crashed = [source for source in listed if imports[source.file].crash is not None]
    print(f"forms that crash our importer: {len(crashed)}" + "".join(f"\n  {source.file}" for source in crashed))
    warned = [source.file for source in listed if imports[source.file].warnings]
    kinds = Counter(message for source in listed for message in set(imports[source.file].warnings))
    print(f"forms whose import made Python warnings: {len(warned)}")
    for message, count in kinds.most_common():
        print(f"  {count} × {_shorten(message, 100)}")
    for source in listed:
        if (verdicts[source.file] == _ACCEPTS) != source.pyxform_accepts:
            print(f"SOURCES.md says pyxform {source.pyxform!r} for {source.file}, now {verdicts[source.file]!r}")
    print(f"seconds: pyxform {pyxform_seconds:.1f}, ours {our_seconds:.1f}")


if __name__ == "__main__":
    main()
