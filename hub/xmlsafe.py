"""Hardened XML parsing for untrusted packages.

Parse from bytes only (never a path: libxml2 inflates gzip from paths), with no DTD, no entity
expansion and no network. Any DOCTYPE is refused outright rather than ignored, so a package
that relies on one is told so instead of being read differently from what its author meant.
lxml parsers are not thread-safe, so each thread gets its own.
"""

from __future__ import annotations

import threading

from lxml import etree

from hub.errors import ForbiddenXML, MalformedXML, Problem

_local = threading.local()


def hardened_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """This thread's parser: no entity expansion, no DTD, no network.

    ``huge_tree`` lifts libxml2's limits on text size and depth: only for re-parsing what is
    already in memory (signxml's canonical forms), never for bytes from the wire.
    """
    key = "huge" if huge_tree else "normal"
    cache: dict[str, etree.XMLParser] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get(key)
    if parser is None:
        parser = cache[key] = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=huge_tree,
            remove_comments=False,
            remove_pis=False,
            remove_blank_text=False,
            collect_ids=False,
        )
    return parser


def parse(data: bytes) -> etree._ElementTree:
    """Parse *data* into a tree, or raise :class:`MalformedXML` / :class:`ForbiddenXML`."""
    if not isinstance(data, bytes):  # pragma: no cover - a programming error, not user input
        raise TypeError("parse() takes bytes")
    if not data.strip():
        raise MalformedXML("The package is empty.", problems=[Problem("empty body", line=1)])
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = _explain_syntax_error(data, exc)
        raise MalformedXML(
            f"The package is not well-formed XML: {message}",
            problems=[Problem(message, line=line, column=column)],
        ) from exc
    tree = root.getroottree()
    docinfo = tree.docinfo
    has_doctype = bool(getattr(docinfo, "doctype", ""))  # not in lxml-stubs, present in lxml
    if has_doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise ForbiddenXML(
            "The package declares a DOCTYPE; edXML packages must not carry a DTD or entity "
            "declarations. Remove the <!DOCTYPE …> line.",
            problems=[Problem("DOCTYPE declaration", line=1)],
        )
    for node in root.iter(etree.Entity):  # pragma: no cover - entities are refused above
        raise ForbiddenXML("The package uses an entity reference.", problems=[Problem(str(node))])
    return tree


def _explain_syntax_error(data: bytes, exc: etree.XMLSyntaxError) -> str:
    msg = str(exc.msg or exc).strip()
    head = data.lstrip(b"\xef\xbb\xbf")
    decl = head.find(b"<?xml")
    if decl > 0:
        return (
            f"{decl} stray byte(s) before the XML declaration ({head[:decl][:20]!r}); "
            "the declaration must be the very first thing in the package"
        )
    if exc.position and exc.position[0] == 1 and not head.lstrip().startswith(b"<"):
        return f"the package does not start with '<' ({msg})"
    return msg


def text_of(element: etree._Element | None) -> str:
    """The full string value of *element* (all text nodes joined), stripped.

    Never use ``.text``: a comment inside an element splits it, so
    ``000.00.00.H<!---->26`` would read as ``000.00.00.H``.
    """
    if element is None:
        return ""
    return "".join(str(part) for part in element.itertext()).strip()


def source_line(element: etree._Element | None) -> int | None:
    """The line *element* starts on; None for an element built in code.

    (lxml-stubs types ``sourceline`` loosely, hence the check.)
    """
    line = element.sourceline if element is not None else None
    return line if isinstance(line, int) else None
