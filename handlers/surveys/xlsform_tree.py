"""pyxform's survey tree (xls2json's JSON form) walked into our questions, groups and repeats.

pyxform has already accepted the form; what is checked here is only what matters over chat (a signature
cannot be drawn in a chat, an expression must be one our evaluator knows), each named by sheet, row and
column. Expressions are rewritten from XPath paths (`../yn`, `/data/grp/x`, `current()/../x`) to
${name} before they are compiled, so the engine only ever sees names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyxform.aliases import BINDING_CONVERSIONS
from pyxform.question_type_dictionary import QUESTION_TYPE_DICT
from pyxform.xls2json_backends import DefinitionData

from handlers.surveys.definition import Group, Item, Option, Question, QuestionType, Repeat, Translations, flatten
from handlers.surveys.expr import NAME, Expr
from handlers.surveys.form_files import FileProblem, choice_rows
from handlers.surveys.form_rows import RowProblem, expression
from handlers.surveys.secondary import Element, from_rows, from_xml
from messages import render

Path = tuple[str, ...]  # element names from the form's root, the root itself left out
_DEFAULT = "default"  # pyxform's language of untranslated columns
_MESSAGES = ("jr:constraintMsg", "jr:requiredMsg")  # the bind's texts a person reads
_VIETNAMESE = re.compile(r"(?:^|\W)vi(?:$|\W)|vietnam|việt|viet\b", re.IGNORECASE)
_YES = {"yes", "true", "true()", "1"}
_NO = {"", "no", "false", "false()", "0"}
# appearances of an image question that ask to draw on the screen: nothing a chat can send
_DRAWN = ("signature", "draw", "annotate")
_BINDS = {"int": QuestionType.INTEGER, "decimal": QuestionType.DECIMAL, "string": QuestionType.TEXT,
          "date": QuestionType.DATE, "time": QuestionType.TIME, "dateTime": QuestionType.DATETIME,
          "geopoint": QuestionType.GEOPOINT, "geotrace": QuestionType.GEOTRACE, "geoshape": QuestionType.GEOSHAPE,
          "barcode": QuestionType.BARCODE}
_MEDIA = {"image": QuestionType.IMAGE, "audio": QuestionType.AUDIO, "video": QuestionType.VIDEO}
_SELECTS = {"select1": QuestionType.SELECT_ONE, "select": QuestionType.SELECT_MULTIPLE, "odk:rank": QuestionType.RANK}
# filled by ODK on the phone, or nothing at all over chat (audit logs, background recordings, the
# external instances pulldata() reads): kept as questions never asked, so the export has their columns
_SILENT = {"audit", "background-audio", "background-geopoint", "start-geopoint", "xml-external", "csv-external"}
_EXTERNAL = {"xml-external": ".xml", "csv-external": ".csv"}  # the file each names (pulldata's too: .csv)
# the binds where a bare word (`basic`) is, for ODK, a path to no node: an empty node-set, false
_CONDITIONS = {"relevant", "required", "readonly"}
_OTHER, _OTHER_LABEL = "other", "Other"  # the choice pyxform adds for or_other
# `../x`, `./x`, `../../g/x`, `current()/../x` and `/data/g/x` (outside quoted strings)
_PATH = re.compile(r"(?:current\(\)\s*/\s*)?(?:\.\.?/)+(?:[\w.-]+/)*[\w.-]+|(?<![\w)\]}.$])/[\w.-]+(?:/[\w.-]+)+")
_QUOTED = re.compile(r"('[^']*'|\"[^\"]*\")")


@dataclass(frozen=True)
class Tree:
    filename: str
    json: dict[str, Any]  # pyxform's survey tree
    book: DefinitionData  # the sheets as read: where each row is
    media: Mapping[str, bytes]


@dataclass(frozen=True)
class Walked:
    items: tuple[Item, ...]
    questions: tuple[Question, ...]
    languages: tuple[str, ...]
    instances: dict[str, Element]


@dataclass
class _Node:
    """One element of the tree with where it is; `name` is its answer key, unique over the form."""

    element: dict[str, Any]
    path: Path
    name: str
    row: int | None
    scope: tuple[str, ...]
    children: list[_Node] = field(default_factory=list)


def _rows(book: DefinitionData) -> dict[str, list[int]]:
    """Each name's rows on the survey sheet, in order (the tree keeps the sheet's order)."""
    rows: dict[str, list[int]] = {}
    for number, row in enumerate(book.survey or (), start=2):
        cells = {key.strip().lower(): value for key, value in row.items()}
        kind, name = str(cells.get("type", "")).strip().lower(), cells.get("name") or cells.get("value")
        if name and not kind.startswith("end"):
            rows.setdefault(str(name).strip(), []).append(number)
    return rows


def _meta(element: Mapping[str, Any]) -> bool:
    """pyxform's own group of the record's metadata (instanceID, instanceName, audit…), which no one sees."""
    return element.get("name") == "meta" and bool(element.get("control", {}).get("bodyless"))



class _Walker:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.default = str(tree.json.get("default_language") or _DEFAULT)
        self.rows = _rows(tree.book)
        self.by_path: dict[Path, str] = {}
        self.names: dict[str, int] = {}  # answer key -> how many elements carry that XLSForm name
        self.languages: list[str] = []
        self.order: tuple[str, ...] = ()  # the languages, ordered once pass 1 has seen them all
        self.other_lists: set[str] = set()  # choice lists pyxform added its "other" to (or_other)
        self.row: int | None = None  # of the element being read, for errors
        self.externals: dict[str, str] = {}  # xml-external / csv-external name -> its file's suffix
        self.instances: dict[str, Element] = {}  # those the expressions read, built once

    # ---- pass 1: where everything is, unique names, languages ----
    def nodes(self, elements: Sequence[dict[str, Any]], path: Path, scope: tuple[str, ...]) -> list[_Node]:
        nodes = []
        for element in elements:
            if _meta(element):  # of pyxform's record metadata, only the audit is a (never asked) question
                audits = [child for child in element["children"] if child.get("type") in _SILENT]
                nodes.extend(self.nodes(audits, (*path, str(element["name"])), scope))
                continue
            name = str(element.get("name", ""))
            rows = self.rows.get(name)
            node = _Node(element, (*path, name), self.unique(name, path), rows.pop(0) if rows else None, scope)
            self.by_path[node.path] = node.name
            if element.get("type") in _EXTERNAL:
                self.externals[name] = _EXTERNAL[str(element["type"])]
            if "children" in element:
                inner = (*scope, node.name) if element.get("type") == "repeat" else scope
                node.children = self.nodes(element["children"], node.path, inner)
            if (select := _other_of(nodes, node)) is not None:
                self.other_lists.add(str(select.element.get("list_name", "")))
            else:  # pyxform labels or_other's text question in English only: not a language of the form
                self.note_languages(element)
            nodes.append(node)
        return nodes

    def unique(self, name: str, path: Path) -> str:
        """A name two groups share gets its group's name in front ("grp2_name"), the first keeps it."""
        candidate, ancestors = name, list(path)
        while candidate in self.names and ancestors:
            candidate = f"{ancestors.pop()}_{candidate}"
        number = 2
        base = candidate
        while candidate in self.names:
            candidate, number = f"{base}_{number}", number + 1
        self.names[candidate] = 1
        return candidate

    def note_languages(self, element: Mapping[str, Any]) -> None:
        bind = element.get("bind", {})  # its other keys are expressions, not texts in a language
        texts = [element.get("label"), element.get("hint"), *(bind.get(key) for key in _MESSAGES)]
        texts += [choice.get("label") for choice in element.get("choices", ())]
        for value in texts:
            for language, text in self.texts(value).items():
                if text and language not in self.languages:
                    self.languages.append(language)

    def texts(self, value: object) -> dict[str, str]:
        if isinstance(value, dict):
            return {str(language): str(text) for language, text in value.items() if isinstance(text, str)}
        return {self.default: value} if isinstance(value, str) and value else {}

    def ordered_languages(self) -> tuple[str, ...]:
        """Vietnamese first where the form has it, else the form's default language, then the others."""
        first = next((language for language in self.languages if _VIETNAMESE.search(language)), None)
        if first is None and self.default in self.languages:
            first = self.default
        return tuple(sorted(self.languages, key=lambda language: language != first))  # stable: form order kept

    # ---- pass 2: our items ----
    def items(self, nodes: Sequence[_Node], relevant: Sequence[str]) -> tuple[Item, ...]:
        items: list[Item] = []
        for index, node in enumerate(nodes):
            self.row = node.row
            kind = node.element.get("type")
            own = self.rewrite(self.bind(node, "relevant"), node.path)
            conditions = [*relevant, own] if own else list(relevant)
            if kind in ("group", "repeat"):
                label, labels = self.translated(node.element.get("label"))
                children = self.items(node.children, conditions if kind == "group" else [])
                if kind == "group":
                    items.append(Group(node.name, label, labels, children))
                    continue
                self.row = node.row
                count = node.element.get("control", {}).get("jr:count")
                items.append(Repeat(
                    node.name, label, labels, children, scope=node.scope,
                    relevant=self.compiled("relevant", _all_of(conditions), node.path),
                    count=self.compiled("repeat_count", str(count or ""), node.path),
                ))
                continue
            items.append(self.question(node, _all_of(conditions), _other_of(nodes[:index], node)))
        return tuple(items)

    def question(self, node: _Node, relevant: str, other_of: _Node | None) -> Question:
        element, path = node.element, node.path
        kind, metadata = _kind(element)
        appearance = str(element.get("control", {}).get("appearance", "") or "")
        if kind is QuestionType.IMAGE and any(word in appearance for word in _DRAWN):
            raise RowProblem("appearance", "drawn_image", appearance)
        label, labels = self.translated(element.get("label"))
        hint, hints = self.translated(element.get("hint"))
        if other_of:
            select_label = self.translated(other_of.element.get("label"))[0]
            label, labels = self.other_texts("survey_other_label", labels, label=select_label)
        required_text = self.bind(node, "required")
        required = required_text.lower() in _YES
        choices = self.choices(node, kind, metadata)
        return Question(
            name=node.name,
            kind=kind,
            label=label,
            hint=hint,
            required=required,
            choices=choices,
            constraint=self.compiled("constraint", self.bind(node, "constraint"), path),
            constraint_message=self.translated(element.get("bind", {}).get("jr:constraintMsg"))[0],
            relevant=self.compiled("relevant", relevant, path),
            labels=labels,
            hints=hints,
            scope=node.scope,
            calculation=self.compiled("calculation", self.bind(node, "calculate"), path),
            choice_filter=self.compiled("choice_filter", str(element.get("choice_filter", "") or ""), path),
            default=str(element.get("default", "") or ""),
            required_message=self.translated(element.get("bind", {}).get("jr:requiredMsg"))[0],
            required_if=None if required or required_text.lower() in _NO
            else self.compiled("required", required_text, path),
            read_only=self.bind(node, "readonly").lower() in _YES,
            appearance=appearance,
            parameters=_parameters(element, kind),
            metadata=metadata,
            other_of=other_of.name if other_of else "",
        )

    def choices(self, node: _Node, kind: QuestionType, metadata: str) -> tuple[Option, ...]:
        if kind not in _SELECTS.values() or metadata:
            return ()
        element = node.element
        rows = element.get("choices")
        if rows is None:
            rows = self.file_choices(str(element.get("itemset", "")), element.get("type") == "select one external")
        options = [self.option(row) for row in rows]
        if element.get("list_name") in self.other_lists:  # every select of the list shows pyxform's "other"
            options = [self.other_option(option) if _made_other(option) else option for option in options]
        return tuple(options)

    def option(self, row: Mapping[str, Any]) -> Option:
        label, labels = self.translated(row.get("label"))
        columns = tuple((key, str(value)) for key, value in row.items()
                        if key not in ("name", "label", "media") and isinstance(value, str | int | float))
        return Option(str(row.get("name", "")), label or str(row.get("name", "")), labels, columns)

    def other_option(self, option: Option) -> Option:
        label, labels = self.other_texts("survey_other_choice", option.labels)
        return Option(option.value, label, labels, option.columns)

    def other_texts(self, template: str, labels: Translations, **values: str) -> tuple[str, Translations]:
        """What or_other adds, in Vietnamese (our template) for the first language and any Vietnamese one;
        other languages keep pyxform's English."""
        ours = render(template, **values).strip()
        kept = tuple((language, ours if _ours(language) else text) for language, text in labels)
        first = self.order[0] if self.order else _DEFAULT
        return ours if _ours(first) else next((text for language, text in labels if language == first), ours), kept

    def file_choices(self, itemset: str, external: bool) -> list[dict[str, Any]]:
        if external:
            return [dict(row) for row in self.tree.book.external_choices or ()
                    if str(row.get("list_name") or row.get("list name") or "").strip() == itemset]
        try:
            return [self.grouped(row) for row in choice_rows(itemset, self.tree.media)]
        except FileProblem as problem:
            raise RowProblem("type", problem.reason, itemset) from problem

    def grouped(self, row: Mapping[str, str]) -> dict[str, Any]:
        """A file's `label::English` columns as pyxform groups a sheet's."""
        result: dict[str, Any] = {}
        for key, value in row.items():
            base, _, language = key.partition("::")
            if base == "label" and language:
                result.setdefault("label", {})[language] = value
            elif base == "label" and isinstance(result.get("label"), dict):
                result["label"][self.default] = value
            else:
                result[key] = value
        return result

    def translated(self, value: object) -> tuple[str, Translations]:
        """The text in the form's first language (any language it has, if that one is missing) and the
        other languages' texts."""
        texts = self.texts(value)
        languages = [language for language in self.order if texts.get(language)]
        if not languages:
            return "", ()
        first = self.order[0]
        main = texts.get(first) or texts[languages[0]]
        return main, tuple((language, texts[language]) for language in languages if language != first)

    def bind(self, node: _Node, key: str) -> str:
        value = node.element.get("bind", {}).get(key, "")
        text = str(value).strip() if isinstance(value, str | int | float) else ""
        text = BINDING_CONVERSIONS.get(text, text)  # pyxform's: yes, TRUE, no… as true() and false()
        return "false()" if key in _CONDITIONS and NAME.fullmatch(text) else text

    def rewrite(self, text: str, path: Path) -> str:
        """XPath paths that name a question become ${name}; quoted strings are left alone."""
        if "/" not in text:
            return text
        parts = _QUOTED.split(text)
        return "".join(part if index % 2 else _PATH.sub(lambda m: self.reference(m.group(0), path), part)
                       for index, part in enumerate(parts))

    def reference(self, xpath: str, path: Path) -> str:
        steps = [step for step in re.sub(r"^current\(\)\s*/\s*", "", xpath).split("/") if step]
        if xpath.startswith("/"):
            target: list[str] = steps[1:]  # the first step is the form's root
        else:
            target = list(path)
            for step in steps:
                if step == "..":
                    target = target[:-1]
                elif step != ".":
                    target.append(step)
        name = self.by_path.get(tuple(target))
        if name is None and steps[-1] in self.names:
            name = steps[-1]  # a path we cannot place: the name it ends with
        return "${" + name + "}" if name else xpath

    def compiled(self, column: str, text: str, path: Path) -> Expr | None:
        if not text:
            return None
        # any question of the form: ODK allows a relevant that names a later question (over chat it is
        # still empty when asked), and pyxform has checked every ${name}
        compiled = expression(column, self.rewrite(text, path), self.names, "unknown_question",
                              choice_filter=column == "choice_filter", lookups=True)
        for name in sorted(compiled.instances - self.instances.keys()):
            try:
                self.instances[name] = self.instance(name)
            except FileProblem as problem:
                raise RowProblem(column, problem.reason, self.instance_file(name)) from problem
        return compiled

    def instance(self, name: str) -> Element:
        """What instance('name') reads: the form's choice list of that name, else the file given at import
        (a select_one_from_file's list, an xml-external's records, pulldata's CSV)."""
        listed = self.tree.json.get("choices", {}).get(name)
        if listed is not None and name not in self.externals:
            options = [self.option(row) for row in listed]
            return from_rows({"name": o.value, "label": o.label, **dict(o.columns)} for o in options)
        filename = self.instance_file(name)
        if filename.endswith(".xml"):
            content = self.tree.media.get(filename)
            if content is None:
                raise FileProblem("missing_file")
            try:
                return from_xml(content)
            except (ValueError, SyntaxError) as error:  # SyntaxError: ElementTree's ParseError
                raise FileProblem("bad_file") from error
        return from_rows(choice_rows(filename, self.tree.media))

    def instance_file(self, name: str) -> str:
        """The file an instance id stands for: the one of that stem given with the form, else the kind
        the form declares (xml-external), else a CSV (pulldata, csv-external, select_one_from_file)."""
        given = sorted(file for file in self.tree.media if file.rpartition(".")[0] == name)
        return given[0] if given else name + self.externals.get(name, ".csv")



def _all_of(conditions: Sequence[str]) -> str:
    parts = [condition for condition in conditions if condition]
    return parts[0] if len(parts) == 1 else " and ".join(f"({part})" for part in parts)


def _kind(element: Mapping[str, Any]) -> tuple[QuestionType, str]:
    """Our kind from pyxform's description of the type (its dictionary knows every older name)."""
    type_name = str(element.get("type", ""))
    known = QUESTION_TYPE_DICT.get(type_name, {})
    bind, control = known.get("bind", {}), known.get("control", {})
    if "jr:preloadParams" in bind:
        return QuestionType.METADATA, str(bind["jr:preloadParams"]).removeprefix("uri:")
    if type_name in _SILENT:
        return QuestionType.METADATA, type_name
    if type_name == "note":
        return QuestionType.NOTE, ""
    if type_name == "select one external":
        return QuestionType.SELECT_ONE, ""
    tag = control.get("tag")
    if tag in _SELECTS:
        return _SELECTS[tag], ""
    if tag == "trigger" or type_name == "trigger":
        return QuestionType.ACKNOWLEDGE, ""
    if tag == "range":
        return QuestionType.RANGE, ""
    if not control and bind.get("type", "string") == "string":
        return QuestionType.CALCULATE, ""
    if bind.get("type") == "binary":
        return _MEDIA.get(str(control.get("mediatype", "")).partition("/")[0], QuestionType.FILE), ""
    kind = _BINDS.get(str(bind.get("type", "")))
    if kind is None:
        raise RowProblem("type", "unsupported_type", type_name)
    return kind, ""


def _parameters(element: Mapping[str, Any], kind: QuestionType) -> tuple[tuple[str, str], ...]:
    given = element.get("parameters") or {}
    if isinstance(given, str):  # pyxform leaves the text of types that take no parameters of ours
        given = dict(re.findall(r"([\w-]+)\s*=\s*([^\s;,]+)", given))
    if kind is QuestionType.RANGE:  # pyxform's defaults where the form gives none
        given = {**QUESTION_TYPE_DICT["range"]["parameters"], **given}
    return tuple((str(key), str(value)) for key, value in given.items())


def _made_other(option: Option) -> bool:
    """The choice pyxform adds for or_other, not one the form wrote itself."""
    return option.value == _OTHER and {option.label, *(text for _, text in option.labels)} == {_OTHER_LABEL}


def _ours(language: str) -> bool:
    """Whether or_other's texts in this language are our Vietnamese ones (an untranslated column too)."""
    return language == _DEFAULT or bool(_VIETNAMESE.search(language))


def _other_of(before: Sequence[_Node], node: _Node) -> _Node | None:
    """The select an `or_other` text question specifies: pyxform puts it right after its select, with
    this name and relevant."""
    if not before or node.element.get("type") != "text":
        return None
    select = before[-1].element.get("name", "")
    expected = f"selected(../{select}, '{_OTHER}')"
    made = node.element.get("name") == f"{select}_other" and node.element.get("bind", {}).get("relevant") == expected
    return before[-1] if made else None


def walk(tree: Tree) -> Walked:
    walker = _Walker(tree)
    nodes = walker.nodes(tree.json.get("children", []), (), ())
    walker.order = walker.ordered_languages() or (walker.default,)
    try:
        items = walker.items(nodes, [])
    except RowProblem as problem:
        raise problem.at(tree.filename, sheet="survey", row=walker.row) from problem
    # an untranslated form has one language, which needs no name
    languages = walker.order if walker.languages != [_DEFAULT] and walker.languages else ()
    return Walked(items, flatten(items), languages, walker.instances)
