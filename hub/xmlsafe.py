"""Hardened XML parsing for untrusted packages.

Parse from bytes only (never a path: libxml2 inflates gzip from paths), with no DTD, no entity
expansion and no network. Any DOCTYPE is refused outright rather than ignored, so a package
that relies on one is told so instead of being read differently from what its author meant.
lxml parsers are not thread-safe, so each thread gets its own.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from hub.errors import ForbiddenXML, MalformedXML, Problem

_local = threading.local()
# libxml2 ends its messages with the position, which each Problem already carries.
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")


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
    if not data or data.isspace():  # strip() would copy the whole body
        raise MalformedXML("The package is empty.", problems=[Problem("empty body", line=1)])
    if declares_doctype(data):
        # Refused before libxml2 sees it: even with DTD loading off, libxml2 still fetches an
        # external parameter entity named in the internal subset (a local file, /dev/zero…).
        raise _doctype_refused()
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = _explain_syntax_error(exc)
        raise MalformedXML(
            f"The package is not well-formed XML: {message}",
            problems=[Problem(message, line=line, column=column)],
        ) from exc
    tree = root.getroottree()
    docinfo = tree.docinfo
    has_doctype = bool(getattr(docinfo, "doctype", ""))  # not in lxml-stubs, present in lxml
    if has_doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype_refused()
    for node in root.iter(etree.Entity):  # pragma: no cover - entities are refused above
        raise ForbiddenXML("The package uses an entity reference.", problems=[Problem(str(node))])
    return tree


_PROLOG_BYTES = 64 * 1024
# Most prologs are a declaration and the root's start tag: look at this much first, and at the
# whole window only when the prolog runs on (long comments) or needs explaining. Decoding 64 KiB
# of a 10 KiB package on every request cost more than parsing its header.
_PROLOG_PROBE = 512
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_DECLARED_ENCODING = re.compile(r"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_UTF8_NAMES = {"utf-8", "utf8"}
_UTF16_NAMES = {"utf-16", "utf16", "utf-16le", "utf-16be"}


def _not_utf8(what: str) -> MalformedXML:
    return MalformedXML(
        f"The package is {what}; edXML packages are UTF-8 (QCVN 102).",
        problems=[Problem("unsupported encoding", line=1, column=1)],
    )


def _prolog(data: bytes, window: int = _PROLOG_BYTES) -> str:
    """The first *window* bytes of the package as text, in the only encodings the hub accepts.

    edXML is UTF-8 (QCVN 102); UTF-16 with a byte-order mark is tolerated. Anything libxml2
    would otherwise detect or switch to by itself (UTF-32, EBCDIC, UTF-16 without a mark, or a
    declaration naming another encoding) is refused here, before libxml2 reads a byte: this check
    could not see a DOCTYPE written in those.
    """
    head = data[:window]
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise _not_utf8("UTF-32 encoded")
    if head.startswith(_UTF16_BOMS):
        text, accepted = head.decode("utf-16", errors="replace"), _UTF16_NAMES
    elif head[:4].count(0):
        raise _not_utf8("not UTF-8 encoded (NUL bytes at the start)")
    else:
        text, accepted = head.decode("utf-8", errors="replace").removeprefix("\ufeff"), _UTF8_NAMES
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if not text.startswith("<", start):
        if len(head) < min(len(data), _PROLOG_BYTES):  # explain from the whole window
            return _prolog(data, _PROLOG_BYTES)
        raise MalformedXML(
            f"The package is not well-formed XML: {_explain_start(text, start)}",
            problems=[Problem(_explain_start(text, start), line=1, column=start + 1)],
        )
    # A declaration cut off by a short window does not match here; the prolog scan then runs
    # off the end of the window and looks again at the whole window (declares_doctype).
    declared = _DECLARED_ENCODING.match(text, start)
    if declared and declared.group(1).strip().lower() not in accepted:
        raise MalformedXML(
            f"The package declares encoding {declared.group(1)!r}; edXML packages are UTF-8 "
            '(QCVN 102). Re-encode it as UTF-8 and declare encoding="UTF-8".',
            problems=[Problem(f"encoding {declared.group(1)!r} not accepted", line=1)],
        )
    return text


def _explain_start(text: str, start: int) -> str:
    declaration = text.find("<?xml")
    if declaration > start:
        stray = text[start:declaration]
        return (
            f"{len(stray.encode('utf-8', errors='replace'))} stray byte(s) before the XML "
            f"declaration ({stray[:20]!r}); the declaration must be the very first thing in "
            "the package"
        )
    return f"the package does not start with '<' (it starts with {text[start : start + 20]!r})"


def declares_doctype(data: bytes) -> bool:
    """Whether the prolog (before the root element) holds a ``<!DOCTYPE``.

    Only the prolog is looked at, past the XML declaration, comments, processing instructions
    and white space, so ``<!DOCTYPE`` quoted inside a comment or CDATA in the body is no match.
    Raises :class:`MalformedXML` for an encoding the hub does not accept (see ``_prolog``).
    """
    if _USUAL_PROLOG.match(data):
        return False  # the root element has begun: nothing before it but a UTF-8 declaration
    window = _PROLOG_PROBE
    while True:
        found = _doctype_in_prolog(_prolog(data, window))
        if found is not None:
            return found
        if window >= _PROLOG_BYTES or window >= len(data):
            return False  # unterminated: malformed, and libxml2 says where
        window = _PROLOG_BYTES


# The prolog of nearly every package (the SDK's and the hub's own), decided without decoding:
# the XML declaration naming UTF-8, white space, and the root element's start tag.
_USUAL_PROLOG = re.compile(
    rb"""<\?xml version=(["'])1\.0\1 encoding=(["'])(?i:utf-8)\2\?>[ \t\r\n]*<[A-Za-z_]"""
)

# What may come before the root element besides a DOCTYPE: white space, processing
# instructions (the XML declaration among them) and comments, each ended by its first "?>" or
# "-->". The alternatives start differently, so the match is linear.
_PROLOG_MISC = re.compile(r"(?:[ \t\r\n]+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)


def _doctype_in_prolog(text: str) -> bool | None:
    """Whether the prolog in *text* holds a DOCTYPE; None when *text* ends inside the prolog."""
    misc = _PROLOG_MISC.match(text)
    pos = misc.end() if misc else 0
    rest = text[pos : pos + len("<!DOCTYPE")]
    if rest == "<!DOCTYPE":
        return True
    if "<!DOCTYPE".startswith(rest) or rest.startswith(("<?", "<!--")):
        return None  # the window ends here, in "<!DOCTYPE", or in an unterminated PI/comment
    return False


def _doctype_refused() -> ForbiddenXML:
    return ForbiddenXML(
        "The package declares a DOCTYPE; edXML packages must not carry a DTD or entity "
        "declarations. Remove the <!DOCTYPE …> part.",
        problems=[Problem("DOCTYPE declaration", line=1)],
    )


def _explain_syntax_error(exc: etree.XMLSyntaxError) -> str:
    return _POSITION_SUFFIX.sub("", str(exc.msg or exc).strip())


def text_of(element: etree._Element | None) -> str:
    """The full string value of *element* (all text nodes joined), stripped.

    Never use ``.text``: a comment inside an element splits it, so
    ``000.00.00.H<!---->26`` would read as ``000.00.00.H``.
    """
    if element is None:
        return ""
    if len(element) == 0:  # no child nodes at all (comments and PIs count): .text is all of it
        return (element.text or "").strip()
    return "".join(str(part) for part in element.itertext()).strip()


def descend(element: etree._Element, *tags: str) -> etree._Element | None:
    """``element.find("a/b/c")`` for tags in Clark notation: the first match in document order.

    Without ElementPath (about 2 µs a step) or a tag-filtered ``iterchildren`` (about 1 µs to set
    up): a plain loop over a handful of children is cheaper than either. The first branch is
    tried directly; only when it ends early (an invalid package) is every branch searched, as
    ``find`` would.
    """
    node = element
    for tag in tags:
        for child in node:
            if child.tag == tag:
                node = child
                break
        else:
            return _descend_every_branch(element, tags)
    return node


def children(element: etree._Element, tag: str) -> list[etree._Element]:
    """The children of *element* with *tag* (Clark notation), in order; cheap for few children
    (see :func:`descend`)."""
    return [child for child in element if child.tag == tag]


def _descend_every_branch(element: etree._Element, tags: tuple[str, ...]) -> etree._Element | None:
    if not tags:
        return element
    for child in element.iterchildren(tags[0]):
        found = _descend_every_branch(child, tags[1:])
        if found is not None:
            return found
    return None


def source_line(element: etree._Element | None) -> int | None:
    """The line *element* starts on; None for an element built in code.

    (lxml-stubs types ``sourceline`` loosely, hence the check.)
    """
    line = element.sourceline if element is not None else None
    return line if isinstance(line, int) else None


def element_path(element: etree._Element) -> str:
    """Where *element* is, for people: local names, with ``[n]`` where a name repeats among
    siblings, e.g. ``/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId``."""
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
        after = next(node.itersiblings(node.tag), None)
        steps.append(name if before == 0 and after is None else f"{name}[{before + 1}]")
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


def problem_at(element: etree._Element, message: str) -> Problem:
    """A :class:`Problem` located at *element*: its path and line."""
    return Problem(message, element_path(element), source_line(element))
