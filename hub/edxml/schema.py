"""Schema validation of edXML packages: the XSDs in ``schemas/`` plus what XSD 1.0 cannot say.

Real packages order the MessageHeader children differently from one sender to the next, and XSD
1.0 (all libxml2 supports) cannot express "any order, To repeated". The XSDs therefore model
MessageHeader as an unbounded choice, and this module checks its cardinality (exactly one From,
at least one To, the required fields, at most one of each single-valued field). It also applies
the agency-code policy: the strict QCVN 102 form is required where the hub routes by the code
(MessageHeader From/To) and only warned about elsewhere, because shortened codes, system
identities and ``null`` are seen in the wild.

Every problem carries an element path (local names, ``[n]`` only where a sibling of the same
name repeats) and a line, and libxml2's terse messages are rewritten into plain language.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal, Protocol, cast

from lxml import etree

from hub.errors import Problem, SchemaInvalid
from hub.xmlsafe import source_line, text_of

__all__ = ["PackageKind", "Report", "check", "detect_kind", "validate"]

PackageKind = Literal["edoc", "status"]

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

_KIND_LABEL: Mapping[str, str] = {"edoc": "document package", "status": "status package"}
_XSD_FILE: Mapping[str, str] = {"edoc": "edoc.xsd", "status": "status.xsd"}

_STRICT_ORGAN_ID = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
_ORGAN_ID_FORM = "NNN.NN.NN.XNN (e.g. 000.00.00.G22)"


@dataclass(frozen=True)
class Report:
    """What :func:`check` found: errors reject the package, warnings are reported only."""

    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def check(tree: etree._ElementTree, kind: PackageKind) -> Report:
    """Validate *tree* as a package of *kind*; never raises for a bad package."""
    if kind not in _XSD_FILE:
        raise ValueError(f"unknown package kind {kind!r}")
    root = tree.getroot()
    if root.tag != _q("edXML"):
        return Report(errors=(_wrong_root(root),))
    found = detect_kind(tree)
    if found is not None and found != kind:
        return Report(errors=(_wrong_kind(root, found, kind),))
    errors = _xsd_problems(tree, kind)
    warnings: list[Problem] = []
    header = _message_header(root)
    if header is not None:
        errors += _header_cardinality(header, _HEADER_RULES[kind])
        _status_description(header, kind, errors, warnings)
    errors += _signature_slot(root)
    _organ_ids(root, header, errors, warnings)
    return Report(errors=_by_line(errors), warnings=_by_line(warnings))


def validate(tree: etree._ElementTree, kind: PackageKind) -> Report:
    """:func:`check`, raising :class:`SchemaInvalid` with every error when there is one."""
    report = check(tree, kind)
    if not report.ok:
        first = report.errors[0]
        more = len(report.errors) - 1
        detail = f"The package is not a valid edXML {_KIND_LABEL[kind]}: {first}"
        if more:
            detail += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise SchemaInvalid(detail=detail, problems=report.errors)
    return report


def detect_kind(tree: etree._ElementTree | etree._Element) -> PackageKind | None:
    """``"status"`` if MessageHeader has a StatusCode, ``"edoc"`` if it has a To, else None."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    header = _message_header(root) if root.tag == _q("edXML") else None
    if header is None:
        return None
    if header.find(_q("StatusCode")) is not None:
        return "status"
    if header.find(_q("To")) is not None:
        return "edoc"
    return None


# ---------------------------------------------------------------------------------- schemas

# The XSD text is read once. The compiled schema is kept per thread: lxml's XMLSchema keeps its
# error log on the instance and validates without the GIL, so one instance shared by two threads
# would mix their errors. Compiling takes under a millisecond.
_xsd_lock = threading.Lock()
_xsd_text: dict[str, bytes] = {}
_per_thread = threading.local()


def _xsd_source(kind: str) -> bytes:
    with _xsd_lock:
        if kind not in _xsd_text:
            _xsd_text[kind] = files("schemas").joinpath(_XSD_FILE[kind]).read_bytes()
        return _xsd_text[kind]


def _schema(kind: str) -> etree.XMLSchema:
    cache: dict[str, etree.XMLSchema] | None = getattr(_per_thread, "schemas", None)
    if cache is None:
        cache = _per_thread.schemas = {}
    schema = cache.get(kind)
    if schema is None:
        # The XSDs import nothing; no_network makes sure a future edit cannot fetch anything.
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        schema = etree.XMLSchema(etree.fromstring(_xsd_source(kind), parser))
        cache[kind] = schema
    return schema


_XS = "http://www.w3.org/2001/XMLSchema"
_required_lock = threading.Lock()
_required: dict[str, Mapping[str, frozenset[str]]] = {}


def _required_children(kind: str) -> Mapping[str, frozenset[str]]:
    """Element name -> the children its xs:all group requires, read from the XSD itself."""
    with _required_lock:
        if kind not in _required:
            _required[kind] = _read_required_children(_xsd_source(kind))
        return _required[kind]


def _read_required_children(xsd: bytes) -> Mapping[str, frozenset[str]]:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    document = etree.fromstring(xsd, parser)
    by_type = {
        complex_type.get("name", ""): frozenset(
            child.get("name", "")
            for child in group.iterfind(f"{{{_XS}}}element")
            if child.get("minOccurs", "1") != "0"
        )
        for complex_type in document.iterfind(f"{{{_XS}}}complexType")
        if (group := complex_type.find(f"{{{_XS}}}all")) is not None
    }
    # Within one XSD, every element name with an xs:all type has the same type everywhere.
    return {
        element.get("name", ""): by_type[type_name]
        for element in document.iter(f"{{{_XS}}}element")
        if (type_name := element.get("type", "").rpartition(":")[2]) in by_type
    }


# ---------------------------------------------------------------------------------- XSD errors


class _LogEntry(Protocol):
    """The part of lxml's ``_LogEntry`` used here (lxml-stubs leaves it untyped)."""

    message: str
    path: str | None
    line: int
    type_name: str


_FACET_ERRORS = frozenset(
    {
        "SCHEMAV_CVC_ENUMERATION_VALID",
        "SCHEMAV_CVC_PATTERN_VALID",
        "SCHEMAV_CVC_MAXLENGTH_VALID",
        "SCHEMAV_CVC_MINLENGTH_VALID",
        "SCHEMAV_CVC_LENGTH_VALID",
    }
)
_DATATYPE_ERROR = "SCHEMAV_CVC_DATATYPE_VALID_1_2_1"


def _xsd_problems(tree: etree._ElementTree, kind: str) -> list[Problem]:
    schema = _schema(kind)
    if schema.validate(tree):
        return []
    root = tree.getroot()
    problems: list[Problem] = []
    faceted: set[tuple[str | None, int]] = set()
    for entry in cast("Iterable[_LogEntry]", schema.error_log):
        where = (entry.path, entry.line)
        # Some libxml2 versions follow a facet error with a generic "not a valid value of the
        # atomic type" for the same element: one message per fault is enough.
        if entry.type_name == _DATATYPE_ERROR and where in faceted:
            continue
        if entry.type_name in _FACET_ERRORS:
            faceted.add(where)
        problems.append(_problem_from_entry(root, entry, kind))
    return problems


def _problem_from_entry(root: etree._Element, entry: _LogEntry, kind: str) -> Problem:
    element = _locate(root, entry.path)
    message = _explain(entry.message, element, kind)
    if element is not None:
        return Problem(message, _path(element), source_line(element))
    path = re.sub(r"[\w.-]+:", "", entry.path) if entry.path else None
    return Problem(message, path, entry.line or None)


_PATH_STEP = re.compile(r"(?P<name>[^\[\]]+)(?:\[(?P<index>[0-9]+)\])?")


def _locate(root: etree._Element, path: str | None) -> etree._Element | None:
    """The element a libxml2 node path (``/*/edXML:edXMLEnvelope/*[2]``) points at.

    libxml2 writes ``prefix:name[n]`` for a prefixed element (n counting same-name, same-prefix
    siblings) and ``*[n]`` for one in a default namespace (n counting all element siblings).
    """
    if not path or not path.startswith("/"):
        return None
    node: etree._Element | None = None
    candidates = [root]
    for step in path[1:].split("/"):
        if step.endswith("()"):  # text() and the like: the element itself is meant
            break
        match = _PATH_STEP.fullmatch(step)
        if match is None:
            return None
        matching = [c for c in candidates if _step_matches(c, match["name"])]
        index = int(match["index"] or 1)
        if len(matching) < index:
            return None
        node = matching[index - 1]
        candidates = [c for c in node if isinstance(c.tag, str)]
    return node


def _step_matches(element: etree._Element, name: str) -> bool:
    if name == "*":
        return True
    prefix, _, local = name.rpartition(":")
    if etree.QName(element).localname != local:
        return False
    if prefix:
        return element.prefix == prefix
    return etree.QName(element).namespace is None


@dataclass(frozen=True)
class _Subject:
    """The element a libxml2 message is about."""

    name: str  # local name, for the message
    element: etree._Element | None  # None when the libxml2 path could not be followed
    kind: str


# libxml2 message (after "Element '…': ") → plain language.
_Handler = Callable[["re.Match[str]", _Subject], str]
_HEAD = re.compile(
    r"Element '(?P<element>[^']*)'(?:, attribute '(?P<attr>[^']*)')?: (?P<rest>.*)", re.S
)

_PATTERN_MEANING: Mapping[str, str] = {
    "[0-9]{4}/[0-9]{2}/[0-9]{2}": "a date in the form yyyy/MM/dd (e.g. 2018/09/28)",
    "([0-9]{4}/[0-9]{2}/[0-9]{2})?": "empty or a date in the form yyyy/MM/dd (e.g. 2018/09/28)",
    "[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}": (
        "a timestamp in the form yyyy/MM/dd HH:mm:ss (e.g. 2018/09/28 17:25:11)"
    ),
}
_TYPE_MEANING: Mapping[str, str] = {
    "xs:boolean": "true or false",
    "xs:unsignedShort": "a whole number from 0 to 65535",
    "xs:base64Binary": "base64-encoded data",
}


def _explain(message: str, element: etree._Element | None, kind: str) -> str:
    head = _HEAD.fullmatch(message.strip())
    if head is None:
        return _strip_namespaces(message.strip())
    name = etree.QName(element).localname if element is not None else _local(head["element"])
    rest = head["rest"].strip()
    if head["attr"] and rest.endswith("is not allowed."):
        return f"{name} has an attribute {_local(head['attr'])} that edXML does not define"
    for pattern, handler in _REWRITES:
        match = pattern.fullmatch(rest)
        if match is not None:
            return handler(match, _Subject(name, element, kind))
    return f"{name}: {_strip_namespaces(rest)}"


def _not_expected(match: re.Match[str], it: _Subject) -> str:
    parent = it.element.getparent() if it.element is not None else None
    parent_name = etree.QName(parent).localname if parent is not None else "its parent"
    if match["expected"]:
        expected = _names(match["expected"])
        text = f"{it.name} is not allowed at this point in {parent_name}; expected {expected}"
    elif parent is not None and parent.tag == _q("MessageHeader"):
        allowed = ", ".join(_HEADER_RULES[it.kind].allowed)
        text = f"{it.name} is not allowed in MessageHeader; it may contain {allowed}"
    else:
        text = (
            f"{it.name} is not allowed at this point in {parent_name} "
            "(an unknown element, a repeat, or out of order)"
        )
    return text + _namespace_note(it.element)


def _missing_child(match: re.Match[str], it: _Subject) -> str:
    expected = _split_names(match["expected"])
    # In an xs:all libxml2 lists every child not seen yet, optional ones included: name only the
    # required ones. In a sequence its list is what may come next.
    required = _required_children(it.kind).get(it.name)
    missing = [name for name in expected if required is None or name in required] or expected
    if len(missing) == 1:
        return f"{it.name} is incomplete: {missing[0]} is missing"
    if required is not None or match["one"] is None:
        return f"{it.name} is incomplete: {', '.join(missing)} are missing"
    return f"{it.name} is incomplete: expected one of {', '.join(missing)}"


def _enumeration(match: re.Match[str], it: _Subject) -> str:
    allowed = re.findall(r"'([^']*)'", match["set"])
    return f"{it.name} {_quote(match['value'])} is not one of {', '.join(allowed)}"


def _max_length(match: re.Match[str], it: _Subject) -> str:
    return f"{it.name} is {match['length']} characters long; at most {match['limit']} are allowed"


def _min_length(match: re.Match[str], it: _Subject) -> str:
    if match["length"] == "0":
        return f"{it.name} is empty; a value is required"
    return f"{it.name} is {match['length']} characters long; at least {match['limit']} are required"


def _pattern(match: re.Match[str], it: _Subject) -> str:
    meaning = _PATTERN_MEANING.get(match["pattern"], f"in the form {match['pattern']}")
    return f"{it.name} {_quote(match['value'])} is not {meaning}"


def _datatype(match: re.Match[str], it: _Subject) -> str:
    meaning = _TYPE_MEANING.get(match["type"] or "", "a valid value")
    if not match["value"].strip():
        return f"{it.name} is empty; expected {meaning}"
    return f"{it.name} {_quote(match['value'])} is not {meaning}"


def _attribute_missing(match: re.Match[str], it: _Subject) -> str:
    return f"{it.name} has no {_local(match['attr'])} attribute; it is required"


def _text_in_elements(_: re.Match[str], it: _Subject) -> str:
    return f"{it.name} contains text; only child elements are allowed there"


def _elements_in_text(_: re.Match[str], it: _Subject) -> str:
    return f"{it.name} contains child elements; it must hold text only"


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("".join(parts), re.S)


_REWRITES: tuple[tuple[re.Pattern[str], _Handler], ...] = (
    (
        _rx(
            r"This element is not expected\.",
            r"(?: Expected is (?:one of )?\( (?P<expected>.+) \)\.)?",
        ),
        _not_expected,
    ),
    (
        _rx(
            r"Missing child element\(s\)\. ",
            r"Expected is (?P<one>one of )?\( (?P<expected>.+) \)\.",
        ),
        _missing_child,
    ),
    (
        _rx(
            r"\[facet 'enumeration'\] The value '(?P<value>.*)' ",
            r"is not an element of the set \{(?P<set>.*)\}\.",
        ),
        _enumeration,
    ),
    (
        _rx(
            r"\[facet 'maxLength'\] The value (?:'.*' )?has a length of '(?P<length>[0-9]+)'; ",
            r"this exceeds the allowed maximum length of '(?P<limit>[0-9]+)'\.",
        ),
        _max_length,
    ),
    (
        _rx(
            r"\[facet 'minLength'\] The value (?:'.*' )?has a length of '(?P<length>[0-9]+)'; ",
            r"this underruns the allowed minimum length of '(?P<limit>[0-9]+)'\.",
        ),
        _min_length,
    ),
    (
        _rx(
            r"\[facet 'pattern'\] The value '(?P<value>.*)' ",
            r"is not accepted by the pattern '(?P<pattern>.*)'\.",
        ),
        _pattern,
    ),
    (
        _rx(
            r"'(?P<value>.*)' is not a valid value of the (?:local )?(?:atomic|list|union) type",
            r"(?: '(?P<type>[^']*)')?\.",
        ),
        _datatype,
    ),
    (_rx(r"The attribute '(?P<attr>[^']*)' is required but missing\."), _attribute_missing),
    (
        _rx(
            r"Character content other than whitespace is not allowed ",
            r"because the content type is 'element-only'\.",
        ),
        _text_in_elements,
    ),
    (
        _rx(
            r"Element content is not allowed, because the ",
            r"(?:content type is a simple type definition|type definition is simple)\.",
        ),
        _elements_in_text,
    ),
)


def _namespace_note(element: etree._Element | None) -> str:
    if element is None:
        return ""
    namespace = etree.QName(element).namespace
    if namespace == NS:
        return ""
    found = f"namespace {namespace}" if namespace else "no namespace"
    return f" (it is in {found}; edXML elements belong to the namespace {NS})"


def _split_names(listing: str) -> list[str]:
    return [_display_name(item.strip()) for item in listing.split(",") if item.strip()]


def _names(listing: str) -> str:
    names = _split_names(listing)
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _display_name(clark: str) -> str:
    if clark == f"{{{DS_NS}}}*":
        return "ds:Signature (XMLDSig)"
    match = re.fullmatch(r"(?:##other)?\{(?P<ns>[^}]*)\}(?P<local>.+)", clark)
    if match is None:
        return clark
    if match["ns"] == NS:
        return match["local"]
    if match["local"] == "*":
        return f"any element in the namespace {match['ns']}"
    return f"{match['local']} (namespace {match['ns']})"


def _local(clark: str) -> str:
    return clark.rpartition("}")[2]


def _strip_namespaces(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "", text)


def _quote(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return f"'{value[: limit - 1]}…'" if len(value) > limit else f"'{value}'"


# ---------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _HeaderRules:
    """What a MessageHeader of one kind must and may contain."""

    label: str
    allowed: tuple[str, ...]
    required: Mapping[str, str]  # name -> what it is, for the message
    repeatable: frozenset[str]


_HEADER_RULES: Mapping[str, _HeaderRules] = {
    "edoc": _HeaderRules(
        label="a document package",
        allowed=(
            "From",
            "To",
            "DocumentId",
            "Code",
            "PromulgationInfo",
            "DocumentType",
            "Subject",
            "Content",
            "SignerInfo",
            "DueDate",
            "ToPlaces",
            "OtherInfo",
            "ResponseFor",
            "SteeringType",
        ),
        required={
            "From": "the sending agency",
            "To": "a recipient",
            "DocumentId": "the document's business id",
            "Code": "the document number and notation",
            "PromulgationInfo": "the place and date of promulgation",
            "DocumentType": "the type of document",
            "Subject": "the summary line, trích yếu",
            "Content": "the summary text",
        },
        repeatable=frozenset({"To", "ResponseFor"}),
    ),
    "status": _HeaderRules(
        label="a status package",
        allowed=("From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"),
        required={
            "From": "the agency reporting the status",
            "ResponseFor": "the document the status is about",
            "StatusCode": "the status code",
            "Timestamp": "when the status was set",
        },
        repeatable=frozenset(),
    ),
}


def _header_cardinality(header: etree._Element, rules: _HeaderRules) -> list[Problem]:
    problems: list[Problem] = []
    for name, meaning in rules.required.items():
        if header.find(_q(name)) is None:
            need = f"at least one {name}" if name in rules.repeatable else f"exactly one {name}"
            problems.append(
                _at(header, f"MessageHeader has no {name} ({meaning}); {rules.label} needs {need}")
            )
    for name in rules.allowed:
        if name in rules.repeatable:
            continue
        found = header.findall(_q(name))
        need = "exactly one" if name in rules.required else "at most one"
        for extra in found[1:]:
            problems.append(
                _at(extra, f"{name} appears {len(found)} times in MessageHeader; {need} is allowed")
            )
    return problems


def _status_description(
    header: etree._Element, kind: str, errors: list[Problem], warnings: list[Problem]
) -> None:
    """A rejection (02) must say why; a recall request (13) should."""
    if kind != "status":
        return
    code = header.find(_q("StatusCode"))
    if code is None or text_of(header.find(_q("Description"))):
        return
    if text_of(code) == "02":
        errors.append(_at(code, "StatusCode 02 (rejected) needs a Description giving the reason"))
    elif text_of(code) == "13":
        warnings.append(
            _at(code, "StatusCode 13 (recall request) should give the reason in Description")
        )


def _signature_slot(root: etree._Element) -> list[Problem]:
    """The XSD lets any XMLDSig element into the signature slot; only Signature belongs there."""
    header = root.find(f"{_q('edXMLEnvelope')}/{_q('edXMLHeader')}")
    if header is None:
        return []
    return [
        _at(
            child,
            f"ds:{etree.QName(child).localname} is not allowed in edXMLHeader; "
            "only a ds:Signature may be there",
        )
        for child in header
        if isinstance(child.tag, str)
        and etree.QName(child).namespace == DS_NS
        and etree.QName(child).localname != "Signature"
    ]


def _organ_ids(
    root: etree._Element,
    header: etree._Element | None,
    errors: list[Problem],
    warnings: list[Problem],
) -> None:
    """Strict agency codes where the hub routes by them; a warning anywhere else."""
    routing = {_q("From"), _q("To")}
    for organ_id in root.iter(_q("OrganId")):
        if _inside_signature(organ_id):
            continue
        value = text_of(organ_id)
        if _STRICT_ORGAN_ID.fullmatch(value):
            continue
        parent = organ_id.getparent()
        if parent is not None and parent.tag in routing and parent.getparent() is header:
            owner = etree.QName(parent).localname
            what = "is empty" if not value else f"{_quote(value)} is not an agency code"
            errors.append(
                _at(
                    organ_id,
                    f"{owner}/OrganId {what}; the hub routes by it, "
                    f"so it must have the QCVN 102 form {_ORGAN_ID_FORM}",
                )
            )
        elif parent is not None and parent.tag == _q("ResponseFor") and not value:
            continue  # an empty ResponseFor placeholder, seen in the wild
        else:
            warnings.append(_at(organ_id, _loose_organ_id(value)))


def _loose_organ_id(value: str) -> str:
    if not value:
        return "OrganId is empty; accepted, but it names no agency"
    return (
        f"OrganId {_quote(value)} is not in the QCVN 102 form {_ORGAN_ID_FORM}; "
        "accepted, as such codes occur in the wild"
    )


def _inside_signature(element: etree._Element) -> bool:
    signatures = {_q("Signature"), f"{{{DS_NS}}}Signature"}
    return any(ancestor.tag in signatures for ancestor in element.iterancestors())


# ---------------------------------------------------------------------------------- helpers


def _q(local: str) -> str:
    return f"{{{NS}}}{local}"


def _message_header(root: etree._Element) -> etree._Element | None:
    return root.find(f"{_q('edXMLEnvelope')}/{_q('edXMLHeader')}/{_q('MessageHeader')}")


def _wrong_root(root: etree._Element) -> Problem:
    qname = etree.QName(root)
    expected = f'<edXML xmlns="{NS}">'
    if qname.localname == "edXML":
        found = f"namespace {qname.namespace}" if qname.namespace else "no namespace"
        message = f"the root element edXML is in {found}; an edXML package starts with {expected}"
    else:
        message = f"the root element is {qname.localname}; an edXML package starts with {expected}"
    return Problem(message, "/" + qname.localname, source_line(root))


def _wrong_kind(root: etree._Element, found: str, expected: str) -> Problem:
    telltale_name = "StatusCode" if found == "status" else "To"
    telltale = root.find(f".//{_q('MessageHeader')}/{_q(telltale_name)}")
    message = (
        f"this is a {_KIND_LABEL[found]} (its MessageHeader has a {telltale_name}), "
        f"but a {_KIND_LABEL[expected]} was expected here"
    )
    return _at(telltale if telltale is not None else root, message)


def _at(element: etree._Element, message: str) -> Problem:
    return Problem(message, _path(element), source_line(element))


def _path(element: etree._Element) -> str:
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        steps.append(_step(node))
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


def _step(element: etree._Element) -> str:
    name = etree.QName(element).localname
    before = sum(1 for _ in element.itersiblings(element.tag, preceding=True))
    after = next(element.itersiblings(element.tag), None)
    if before == 0 and after is None:
        return name
    return f"{name}[{before + 1}]"


def _by_line(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 30))
