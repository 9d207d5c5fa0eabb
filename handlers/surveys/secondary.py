"""The data a form reads besides its answers (XForms' secondary instances): its own choice lists, the CSV,
XML or GeoJSON files given with it at import, read by `instance('id')/root/item[name = ${x}]/label` and
`pulldata('id', 'column', 'key column', ${x})`.

Each instance is a small element tree, as ODK builds it: a choice list or a CSV is <root><item> with one
child per column; an XML file is its own tree. A form's instances are built once when the form is
loaded; the lookups that filter an instance's items by a column are indexed there too (expr.py fills
`Element.indexes` the first time a predicate `[column = value]` runs over those items).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element as XmlElement

from defusedxml.ElementTree import fromstring  # pyxform's own dependency: no entity expansion from a file


@dataclass(frozen=True, eq=False)
class Element:
    """One node of an instance: `tag`, its text (a leaf's value) and its child elements in order. The
    document itself is an Element with the empty tag whose only child is the root (`root`)."""

    tag: str
    text: str = ""
    children: tuple[Element, ...] = ()
    by_tag: dict[str, tuple[Element, ...]] = field(init=False, repr=False)
    # (child tag, column) -> those children by their column's equality key: expr.py's lookups
    indexes: dict[tuple[str, str], dict[object, list[Element]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Element]] = {}
        for child in self.children:
            grouped.setdefault(child.tag, []).append(child)
        object.__setattr__(self, "by_tag", {tag: tuple(found) for tag, found in grouped.items()})

    def named(self, tag: str) -> tuple[Element, ...]:
        """The children with that tag (`*`: all), in order."""
        return self.children if tag == "*" else self.by_tag.get(tag, ())

    @property
    def value(self) -> str:
        """XPath's string value: a leaf's text, else its descendants' texts joined."""
        return self.text if not self.children else "".join(child.value for child in self.children)


def from_rows(rows: Iterable[Mapping[str, str]]) -> Element:
    """A choice list or a CSV file: <root><item><column>value</column>…</item>…</root>."""
    items = tuple(Element("item", children=tuple(Element(key, value) for key, value in row.items())) for row in rows)
    return Element("", children=(Element("root", children=items),))


def from_xml(content: bytes) -> Element:
    """An XML file (a KoBoToolbox or Central export of another form's records, a list of places…).
    Raises ValueError (defusedxml's refusals, nesting too deep) or ParseError when it is not XML."""
    return Element("", children=(_converted(fromstring(content), 0),))


_MAX_DEPTH = 100  # of an XML file's nesting: records are a few levels deep; a deeper file is no data


def _converted(node: XmlElement, depth: int) -> Element:
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deep")
    tag = node.tag.rpartition("}")[2]  # a namespace is no part of the name XPath steps use here
    return Element(tag, (node.text or "").strip(), tuple(_converted(child, depth + 1) for child in node))
