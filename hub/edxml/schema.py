"""Schema validation of edXML packages: the XSDs in ``schemas/`` plus what XSD 1.0 cannot say,
and the hub's validation policy for the rules that real packages break.

Real packages order the MessageHeader children differently from one sender to the next, and XSD
1.0 (all libxml2 supports) cannot express "any order, To repeated". The XSDs therefore model
MessageHeader as an unbounded choice, and this module checks its cardinality (exactly one From,
at least one To, the required fields, at most one of each single-valued field). The strict QCVN
102 agency code is required where the hub routes by it (MessageHeader From/To).

The XSDs hold only what is always an error. The rules that real packages break (shortened agency
codes, ``null`` in a TraceHeader, an over-long CodeNumber, UUID DocumentIds, impossible dates, a
recall without a reason) are checked here, and a :class:`ValidationPolicy` decides per rule
whether the package is refused, accepted with a warning, or accepted silently (README,
"Validation policy"; ``[validation]`` in hub.toml).

The yes/no answer is lxml's (libxml2, compiled once per thread). Most packages have nothing to
report, and those are answered by a *gate* first: the same XSD, stricter where the Python rules
look at values (strict agency codes, dates that exist, CodeNumber within QCVN 102's length), and
leaving the attachments' base64 to the manifest's strict check. A package the gate clears, with a
sound manifest and signature slot, has nothing for those rules or for the XSD to say, so they are
not run. Any other package takes the full path: the XSD, then every rule, as if the gate were not
there; so the gate changes no verdict and no message, only the time a clean package takes.
Only when lxml says "invalid" is the explanation built, with xmlschema, from the same XSD text:
every problem carries an element path (local names, ``[n]`` only where a sibling of the same name
repeats), the line of the element, and a plain-language message that says what was expected
there.

:func:`report_for` is the dry run behind ``POST /v1/validate`` and ``lienthong validate``.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from lxml import etree

from hub.edxml.attachments import manifest_problems
from hub.errors import ForbiddenXML, MalformedXML, Problem, SchemaInvalid, SignatureError
from hub.xmlsafe import children, descend, parse, problem_at, source_line, text_of

if TYPE_CHECKING:  # imported where used: xmlschema and signxml only load when needed
    from cryptography import x509
    from xmlschema import XMLSchema10, XMLSchemaValidationError

    from signing.xmldsig import SignaturePolicy

__all__ = [
    "ACTIONS",
    "Action",
    "PackageKind",
    "Report",
    "ValidationPolicy",
    "check",
    "detect_kind",
    "report_for",
    "validate",
]

log = logging.getLogger(__name__)

PackageKind = Literal["edoc", "status"]

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


def _q(local: str) -> str:
    return f"{{{NS}}}{local}"


_EDXML, _ENVELOPE, _HEADER = _q("edXML"), _q("edXMLEnvelope"), _q("edXMLHeader")
_MESSAGE_HEADER, _EDXML_BRACE = _q("MessageHeader"), f"{{{NS}}}"
_TO, _CODE, _CODE_NUMBER = _q("To"), _q("Code"), _q("CodeNumber")
_STATUS_CODE, _DESCRIPTION = _q("StatusCode"), _q("Description")
_ORGAN_ID, _DOCUMENT_ID_TAG = _q("OrganId"), _q("DocumentId")
_ROUTING = frozenset({_q("From"), _TO})

_KIND_LABEL: Mapping[str, str] = {"edoc": "document package", "status": "status package"}
_XSD_FILE: Mapping[str, str] = {"edoc": "edoc.xsd", "status": "status.xsd"}

_STRICT_ORGAN_ID = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
_ORGAN_ID_FORM = "NNN.NN.NN.XNN (e.g. 000.00.00.G22)"

Action = Literal["reject", "warn", "accept"]
ACTIONS: tuple[Action, ...] = ("reject", "warn", "accept")

# QCVN 102's limit for Code/CodeNumber. The XSD itself stops at 64, what the hub can store.
CODE_NUMBER_LIMIT = 11


@dataclass(frozen=True)
class ValidationPolicy:
    """What the hub does with a package that breaks a rule real packages break. Frozen; the
    defaults are the safe ones.

    Each field is one rule, named as its key in the ``[validation]`` section of hub.toml, and is
    ``"reject"`` (an error: the package is refused), ``"warn"`` (accepted; the warning is kept in
    the document's trace and shown by a validation report) or ``"accept"`` (accepted silently).
    What is always wrong (a malformed package, a missing required element, From/To codes the hub
    cannot route by, a rejection 02 without its reason) is no policy matter: always an error.
    """

    agency_code: Action = "warn"
    """An OrganId outside MessageHeader From/To (TraceHeader, ResponseFor, Receiver,
    ReplacementInfo) not in the strict QCVN 102 form: ``01.02.G22``, ``vxp.saas.03``."""
    null_trace_organ_id: Action = "warn"
    """A TraceHeader/OrganId that is the literal ``null`` or empty."""
    code_number_length: Action = "reject"
    """A CodeNumber longer than QCVN 102's 11 characters (recipients' systems enforce it)."""
    document_id: Action = "accept"
    """A DocumentId not in the form ``<issuer code>,<yyyy/MM/dd>,<number>/<notation>`` or
    holding a date that does not exist: UUIDs are seen in the wild, and the id is opaque."""
    impossible_date: Action = "warn"
    """A date or timestamp in the right form that does not exist (``2014/02/30``)."""
    recall_without_reason: Action = "warn"
    """A recall request (status 13) without a Description giving the reason."""

    def __post_init__(self) -> None:
        for rule in self.rules():
            value = getattr(self, rule)
            if value not in ACTIONS:
                raise ValueError(
                    f"ValidationPolicy.{rule}: {value!r} is not one of {', '.join(ACTIONS)}"
                )

    @classmethod
    def rules(cls) -> tuple[str, ...]:
        """The rule names, which are also the ``[validation]`` keys of hub.toml."""
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, str]:
        return {rule: getattr(self, rule) for rule in self.rules()}


DEFAULT_POLICY = ValidationPolicy()


@dataclass(frozen=True)
class Report:
    """What :func:`check` found: errors reject the package, warnings are reported only."""

    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def check(
    tree: etree._ElementTree, kind: PackageKind, policy: ValidationPolicy = DEFAULT_POLICY
) -> Report:
    """Validate *tree* as a package of *kind* under *policy*; never raises for a bad package."""
    if kind not in _XSD_FILE:
        raise ValueError(f"unknown package kind {kind!r}")
    root = tree.getroot()
    if root.tag != _EDXML:
        return Report(errors=(_wrong_root(root),))
    header = _message_header(root)
    fields = _header_fields(header)
    found = _kind_of(fields)
    if found is not None and found != kind:
        return Report(errors=(_wrong_kind(root, found, kind),))
    cleared = _cleared(tree, kind)
    errors = [] if cleared else _xsd_problems(tree, kind)
    warnings: list[Problem] = []
    verdicts = _Verdicts(policy, errors, warnings)
    if header is not None:
        errors += _header_cardinality(header, fields, _HEADER_RULES[kind])
        _status_description(fields, kind, verdicts)
        if not cleared:
            _code_number(fields, kind, verdicts)
    if not cleared:
        errors += _signature_slot(root)
        if kind == "edoc":
            errors += manifest_problems(root, already=errors)
    _values(root, header, verdicts, cleared=cleared)
    return Report(errors=_by_line(errors), warnings=_by_line(warnings))


def _cleared(tree: etree._ElementTree, kind: PackageKind) -> bool:
    """Whether the gate clears *tree*: then the XSD, the signature slot, the manifest, the agency
    codes, the dates and CodeNumber's length have nothing to report, and are not looked at again.

    The gate is the XSD made stricter where the Python rules on values look (see
    :func:`_gate_source`), with one exception: it leaves the attachments' base64 to the strict
    check of the manifest, which accepts nothing xs:base64Binary refuses and is several times
    faster than libxml2's test of it. Whatever it does not clear (an invalid package, or one
    with something to report: a shortened code in a TraceHeader, 2024/02/29, …) takes the full
    path, which finds and explains every problem as if the gate were not there.
    """
    if not _schema(kind, gate=True).validate(tree):
        return False
    root = tree.getroot()
    # The gate skips what is inside the signature slot, so an element there that is no
    # signature (whose content the value rules would read) is for the full path to report.
    if _signature_slot(root):
        return False
    return kind != "edoc" or not manifest_problems(root)


def validate(
    tree: etree._ElementTree, kind: PackageKind, policy: ValidationPolicy = DEFAULT_POLICY
) -> Report:
    """:func:`check`, raising :class:`SchemaInvalid` with every error when there is one."""
    report = check(tree, kind, policy)
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
    return _kind_of(_header_fields(_message_header(root) if root.tag == _EDXML else None))


def _kind_of(fields: Mapping[str, list[etree._Element]]) -> PackageKind | None:
    if _STATUS_CODE in fields:
        return "status"
    if _TO in fields:
        return "edoc"
    return None


def _header_fields(header: etree._Element | None) -> dict[str, list[etree._Element]]:
    """The edXML children of MessageHeader by tag, in document order: one pass that every
    header rule reads (``find`` per name would cost about a microsecond each, 20 times)."""
    fields: dict[str, list[etree._Element]] = {}
    if header is not None:
        for child in header:
            tag = child.tag
            if tag.__class__ is not str or not tag.startswith(_EDXML_BRACE):
                continue  # a comment or processing instruction, or another namespace
            same = fields.get(tag)
            if same is None:
                fields[tag] = [child]
            else:
                same.append(child)
    return fields


def report_for(
    data: bytes,
    kind: PackageKind | None = None,
    policy: ValidationPolicy = DEFAULT_POLICY,
    *,
    certificates: Sequence[x509.Certificate] | None = None,
    signature_policy: SignaturePolicy | None = None,
) -> dict[str, Any]:
    """The validation report of *data*: a dry run that stores nothing and never raises for a bad
    package. ``POST /v1/validate`` and ``lienthong validate`` both answer with it.

    ``valid`` is the verdict on the package itself (well-formed, hardening rules, the schema and
    *policy*: what ``code`` would be refused with at intake); the signature is reported beside it
    and does not change it. *kind* forces the kind to check against (otherwise it is detected:
    a StatusCode makes a status package, anything else is checked as a document). *certificates*
    are the sender's registered certificates to verify the signature against; without them
    (``None``) only what needs no certificate is judged: a missing signature, or a shape or
    algorithm the hub refuses; otherwise ``signature.checked`` is false.
    """
    try:
        tree = parse(data)
    except (MalformedXML, ForbiddenXML) as exc:
        return _report_dict(
            valid=False,
            kind=kind,
            code=exc.code,
            errors=exc.problems or (Problem(exc.detail),),
            warnings=(),
            signature=_NOT_CHECKED,
        )
    detected = detect_kind(tree)
    checked_as: PackageKind = kind or detected or "edoc"
    report = check(tree, checked_as, policy)
    code = None
    if not report.ok:
        mismatch = kind is not None and detected is not None and detected != kind
        code = "package.kind" if mismatch else SchemaInvalid.code
    return _report_dict(
        valid=report.ok,
        kind=checked_as,
        code=code,
        errors=report.errors,
        warnings=report.warnings,
        signature=_signature_report(tree, certificates, signature_policy),
    )


_NOT_CHECKED: Mapping[str, Any] = {"checked": False, "valid": None, "problem": None}


def _report_dict(
    *,
    valid: bool,
    kind: PackageKind | None,
    code: str | None,
    errors: Iterable[Problem],
    warnings: Iterable[Problem],
    signature: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "valid": valid,
        "kind": kind,
        "code": code,
        "errors": [p.as_dict() for p in errors],
        "warnings": [p.as_dict() for p in warnings],
        "signature": dict(signature),
    }


def _signature_report(
    tree: etree._ElementTree,
    certificates: Sequence[x509.Certificate] | None,
    signature_policy: SignaturePolicy | None,
) -> Mapping[str, Any]:
    from signing.xmldsig import SignaturePolicy, verify_package  # signxml loads only here

    if tree.getroot().tag != _q("edXML"):
        return _NOT_CHECKED
    try:
        verify_package(tree, tuple(certificates or ()), signature_policy or SignaturePolicy())
    except SignatureError as exc:
        if certificates is None and exc.code == "signature.untrusted":
            # Present and of an accepted shape: only the sender's certificates could say more.
            return _NOT_CHECKED
        return {
            "checked": True,
            "valid": False,
            "problem": {"code": exc.code, "detail": exc.detail},
        }
    return {"checked": True, "valid": True, "problem": None}


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


def _schema(kind: str, *, gate: bool = False) -> etree.XMLSchema:
    """The compiled XSD of *kind*, or its gate (:func:`_gate_source`), for this thread."""
    cache: dict[tuple[str, bool], etree.XMLSchema] | None = getattr(_per_thread, "schemas", None)
    if cache is None:
        cache = _per_thread.schemas = {}
    schema = cache.get((kind, gate))
    if schema is None:
        xsd = _xsd_tree(kind)
        schema = cache[kind, gate] = etree.XMLSchema(_gate_source(xsd) if gate else xsd)
    return schema


def _xsd_tree(kind: str) -> etree._Element:
    # The XSDs import nothing; no_network makes sure a future edit cannot fetch anything.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.fromstring(_xsd_source(kind), parser)


# --------------------------------------------------------------------------------- the gate

# A date (yyyy/MM/dd) that certainly exists, and a time of day: years 1000-2999, and no 29
# February (leap years are left to the full path, which asks the calendar).
_REAL_DATE = (
    "[12][0-9]{3}/((0[1-9]|1[0-2])/(0[1-9]|1[0-9]|2[0-8])"
    "|(0[13-9]|1[0-2])/(29|30)|(0[13578]|1[02])/31)"
)
_REAL_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_XS = "http://www.w3.org/2001/XMLSchema"
_XS_ELEMENT, _XS_SIMPLE_TYPE = f"{{{_XS}}}element", f"{{{_XS}}}simpleType"

# What the gate adds, by element name, to the type the XSD gives each element of that name: a
# value that passes leaves the rules named beside it nothing to report, whatever the policy.
_GATE_FACETS: Mapping[str, tuple[str, str]] = {
    "OrganId": ("pattern", _STRICT_ORGAN_ID.pattern),  # From/To, agency_code, null_trace_organ_id
    "PromulgationDate": ("pattern", f"({_REAL_DATE})?"),  # impossible_date; "" if it may be
    "DueDate": ("pattern", f"({_REAL_DATE})?"),  # (patterns of a type and its base all apply)
    "Timestamp": ("pattern", f"{_REAL_DATE} {_REAL_TIME}"),
    "CodeNumber": ("maxLength", str(CODE_NUMBER_LIMIT)),  # code_number_length
}
# The content the gate leaves to the strict base64 check of the manifest.
_GATE_UNTYPED: Mapping[str, str] = {"ContentTransferEncoded": "xs:base64Binary"}


def _gate_source(xsd: etree._Element) -> etree._Element:
    """*xsd* (a parsed ``schemas/`` file) made into the gate: a package valid against it is
    valid against *xsd*, and every rule the Python checks apply to values has nothing to say.

    Each element named in :data:`_GATE_FACETS` gets a type derived by restriction from its own
    (so the gate can only be stricter there) with the facet added; the content named in
    :data:`_GATE_UNTYPED` becomes ``xs:string``. Derived from the same file rather than written
    out, so the two cannot drift apart. The policy is untouched: the gate never refuses
    anything itself (see :func:`_cleared`).
    """
    gate = copy.deepcopy(xsd)
    own = next(prefix for prefix, uri in gate.nsmap.items() if uri == NS)  # "e" in schemas/
    derived: dict[tuple[str, str], str] = {}
    for element in gate.iter(_XS_ELEMENT):
        name, base = element.get("name", ""), element.get("type", "")
        if name in _GATE_UNTYPED:
            if base != _GATE_UNTYPED[name]:  # pragma: no cover - an edit of the XSDs
                raise RuntimeError(f"gate: {name} has type {base!r}, not {_GATE_UNTYPED[name]}")
            element.set("type", "xs:string")
            continue
        if name not in _GATE_FACETS:
            continue
        if not base:  # pragma: no cover - an edit of the XSDs
            raise RuntimeError(f"gate: {name} needs a named simple type to restrict")
        if (name, base) not in derived:
            derived[name, base] = type_name = f"Gate.{name}.{base.partition(':')[2]}"
            facet, value = _GATE_FACETS[name]
            simple = etree.SubElement(gate, _XS_SIMPLE_TYPE, name=type_name)
            restriction = etree.SubElement(simple, f"{{{_XS}}}restriction", base=base)
            etree.SubElement(restriction, f"{{{_XS}}}{facet}", value=value)
        element.set("type", f"{own}:{derived[name, base]}")
    return gate


_explainer_lock = threading.Lock()
_explainers: dict[str, XMLSchema10] = {}


def _explainer(kind: str) -> XMLSchema10:
    """The xmlschema validator for *kind*: built once, on the first invalid package, from the
    same XSD text lxml compiled.

    Nothing is ever fetched: the XSDs import nothing; resource access is sandboxed to the
    ``schemas`` folder (``allow="sandbox"``), so an import added later could only name a local
    file there; XML is always defused; xmlschema's fallback locations for well-known namespaces
    are off; and a package's ``xsi:schemaLocation`` hints are ignored (``use_location_hints``).
    Built validators are read-only, so one per kind serves every thread.
    """
    with _explainer_lock:
        explainer = _explainers.get(kind)
        if explainer is None:
            from xmlschema import XMLSchema10  # ~0.1 s to import: only the invalid path pays

            explainer = _explainers[kind] = XMLSchema10(
                _xsd_source(kind),
                base_url=str(files("schemas")),
                allow="sandbox",
                defuse="always",
                use_fallback=False,
            )
        return explainer


# ---------------------------------------------------------------------------------- XSD errors


class _LogEntry(Protocol):
    """The part of lxml's ``_LogEntry`` used here (lxml-stubs leaves it untyped)."""

    message: str
    path: str | None
    line: int


def _xsd_problems(tree: etree._ElementTree, kind: str) -> list[Problem]:
    schema = _schema(kind)
    if schema.validate(tree):
        return []
    problems: list[Problem] = []
    try:
        for error in _explainer(kind).iter_errors(tree, use_location_hints=False):
            problem = _explain(error)
            if problem not in problems:
                problems.append(problem)
    except Exception:  # the explanation is best effort: lxml has already decided, and a fault
        # in xmlschema (or in the wording here) must not turn a refusal into a crash.
        log.debug("xmlschema could not explain; using libxml2's messages", exc_info=True)
        problems = []
    if problems:
        return problems
    # xmlschema saw nothing, or failed: never call a package invalid without saying why, so
    # fall back to libxml2's own words.
    root = tree.getroot()
    return [
        _libxml2_problem(root, entry) for entry in cast("Iterable[_LogEntry]", schema.error_log)
    ]


def _libxml2_problem(root: etree._Element, entry: _LogEntry) -> Problem:
    element = _locate(root, entry.path)
    message = _strip_namespaces(
        re.sub(r"^Element '[^']*'(, attribute '[^']*')?: ", "", entry.message.strip())
    )
    if element is not None:
        return problem_at(element, f"{etree.QName(element).localname}: {message}")
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


# xmlschema error → plain language. The error's ``elem`` is the lxml element itself (so the
# path and line are those of the package as sent), ``validator`` is the XSD component that
# failed, and for content errors ``invalid_child`` and ``expected`` say what came and what
# could have.

_PATTERN_MEANING: Mapping[str, str] = {
    "[0-9]{4}/[0-9]{2}/[0-9]{2}": "a date in the form yyyy/MM/dd (e.g. 2018/09/28)",
    "([0-9]{4}/[0-9]{2}/[0-9]{2})?": "empty or a date in the form yyyy/MM/dd (e.g. 2018/09/28)",
    "[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}": (
        "a timestamp in the form yyyy/MM/dd HH:mm:ss (e.g. 2018/09/28 17:25:11)"
    ),
}
_TYPE_MEANING: Mapping[str, str] = {
    "boolean": "true or false",
    "unsignedShort": "a whole number from 0 to 65535",
    "base64Binary": "base64-encoded data",
}
# xmlschema checks some built-in types with plain functions rather than XSD components.
_TYPE_OF_VALIDATOR: Mapping[str, str] = {"unsigned_short_validator": "unsignedShort"}
_MISSING_ATTRIBUTE = re.compile(r"missing required attribute '(?P<name>[^']+)'")
_UNDEFINED_ATTRIBUTE = re.compile(r"'(?P<name>[^']+)' attribute not allowed")


def _explain(error: XMLSchemaValidationError) -> Problem:
    from xmlschema import XMLSchemaChildrenValidationError

    element = error.elem if isinstance(error.elem, etree._Element) else None
    if element is None:  # pragma: no cover - xmlschema always names the element for lxml input
        return Problem(_strip_namespaces(error.reason or str(error)))
    if isinstance(error, XMLSchemaChildrenValidationError):
        child = error.invalid_child
        if isinstance(child, etree._Element) and isinstance(child.tag, str):
            return problem_at(child, _unexpected_child(child, element, error))
        return problem_at(element, _incomplete(element, error))
    return problem_at(element, _value_problem(error, element))


def _unexpected_child(
    child: etree._Element, parent: etree._Element, error: XMLSchemaValidationError
) -> str:
    from xmlschema.validators import XsdGroup

    name, parent_name = etree.QName(child).localname, etree.QName(parent).localname
    group = error.validator if isinstance(error.validator, XsdGroup) else None
    declared = list(group.iter_elements()) if group is not None else []
    note = _namespace_note(child)
    if declared and not any(particle.is_matching(child.tag) for particle in declared):
        allowed = ", ".join(dict.fromkeys(_particle_name(p) for p in declared))
        return f"{name} is not allowed in {parent_name}; it may contain {allowed}{note}"
    repeat = any(s.tag == child.tag for s in child.itersiblings(preceding=True))
    if repeat and group is not None and group.model == "all":  # any order, each at most once
        return f"{name} appears more than once in {parent_name}; it may appear only once{note}"
    text = f"{name} is not allowed at this point in {parent_name}"
    if repeat:
        text += " (a repeat)"
    expected: list[Any] | None = getattr(error, "expected", None)
    previous = next(child.itersiblings(etree.Element, preceding=True), None)
    if expected:
        text += f"; expected {_one_of([_particle_name(p) for p in expected])}"
    elif expected is not None and previous is not None:  # [] means: nothing more may come
        text += f"; nothing may follow {etree.QName(previous).localname} there"
    return text + note


def _incomplete(element: etree._Element, error: XMLSchemaValidationError) -> str:
    from xmlschema.validators import XsdGroup

    name = etree.QName(element).localname
    missing = list(dict.fromkeys(_particle_name(p) for p in getattr(error, "expected", None) or ()))
    if not missing:
        return f"{name} is incomplete: {_strip_namespaces(error.reason or '')}"
    if len(missing) == 1:
        return f"{name} is incomplete: {missing[0]} is missing"
    model = error.validator.model if isinstance(error.validator, XsdGroup) else ""
    if model == "all":  # in an xs:all, xmlschema lists exactly the required children not seen
        return f"{name} is incomplete: {', '.join(missing)} are missing"
    return f"{name} is incomplete: expected {_one_of(missing)}"


def _value_problem(error: XMLSchemaValidationError, element: etree._Element) -> str:
    from xmlschema.validators import (
        XsdAtomicBuiltin,
        XsdAttributeGroup,
        XsdElement,
        XsdEnumerationFacets,
        XsdGroup,
        XsdLengthFacet,
        XsdMaxLengthFacet,
        XsdMinLengthFacet,
        XsdPatternFacets,
    )

    name = etree.QName(element).localname
    validator = error.validator
    reason = error.reason or ""
    value = error.obj if isinstance(error.obj, str | int) else text_of(element)
    shown = _quote(str(value))
    if isinstance(validator, XsdMaxLengthFacet):
        return f"{name} is {len(str(value))} characters long; at most {validator.value} are allowed"
    if isinstance(validator, XsdMinLengthFacet):
        if not str(value):
            return f"{name} is empty; a value is required"
        return (
            f"{name} is {len(str(value))} characters long; at least {validator.value} are required"
        )
    if isinstance(validator, XsdLengthFacet):
        return (
            f"{name} is {len(str(value))} characters long; exactly {validator.value} are required"
        )
    if isinstance(validator, XsdEnumerationFacets):
        return f"{name} {shown} is not one of {', '.join(map(str, validator.enumeration))}"
    if isinstance(validator, XsdPatternFacets):
        pattern = validator.regexps[0] if len(validator.regexps) == 1 else ""
        meaning = _PATTERN_MEANING.get(pattern, f"in the form {' or '.join(validator.regexps)}")
        return f"{name} {shown} is not {meaning}"
    type_name = (
        validator.local_name
        if isinstance(validator, XsdAtomicBuiltin)
        else _TYPE_OF_VALIDATOR.get(getattr(validator, "__name__", ""), "")
    )
    if type_name:
        meaning = _TYPE_MEANING.get(type_name, f"a valid xs:{type_name}")
        if not str(value).strip():
            return f"{name} is empty; expected {meaning}"
        return f"{name} {shown} is not {meaning}"
    if isinstance(validator, XsdAttributeGroup):
        if match := _MISSING_ATTRIBUTE.search(reason):
            return f"{name} has no {_local(match['name'])} attribute; it is required"
        if match := _UNDEFINED_ATTRIBUTE.search(reason):
            return f"{name} has an attribute {_local(match['name'])} that edXML does not define"
    if isinstance(validator, XsdGroup) and "character data" in reason:
        return f"{name} contains text; only child elements are allowed there"
    if isinstance(validator, XsdElement) and "child elements" in reason:
        return f"{name} contains child elements; it must hold text only"
    return f"{name}: {_strip_namespaces(reason)}"


def _particle_name(particle: Any) -> str:
    """How an expected element (or wildcard) of the XSD is named in a message."""
    name = getattr(particle, "name", None)
    if isinstance(name, str) and name:
        return _display_name(name)
    namespaces = [ns for ns in getattr(particle, "namespace", ()) if ns]
    if namespaces == [DS_NS]:
        return "ds:Signature (XMLDSig)"
    return "any element in " + (", ".join(namespaces) or "any namespace")


def _one_of(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _namespace_note(element: etree._Element | None) -> str:
    if element is None:
        return ""
    namespace = etree.QName(element).namespace
    if namespace == NS:
        return ""
    found = f"namespace {namespace}" if namespace else "no namespace"
    return f" (it is in {found}; edXML elements belong to the namespace {NS})"


def _display_name(clark: str) -> str:
    match = re.fullmatch(r"\{(?P<ns>[^}]*)\}(?P<local>.+)", clark)
    if match is None:
        return clark
    if match["ns"] == NS:
        return match["local"]
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

    @property
    def required_tags(self) -> frozenset[str]:
        return frozenset(_q(name) for name in self.required)

    @property
    def single_tags(self) -> frozenset[str]:
        return frozenset(_q(name) for name in self.allowed if name not in self.repeatable)


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


# Per rule set: the tags that must be there, and those that may appear only once.
_RULE_TAGS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    rules.label: (rules.required_tags, rules.single_tags) for rules in _HEADER_RULES.values()
}


def _header_cardinality(
    header: etree._Element, fields: Mapping[str, list[etree._Element]], rules: _HeaderRules
) -> list[Problem]:
    required, single = _RULE_TAGS[rules.label]
    if required <= fields.keys() and not any(
        len(found) > 1 for tag, found in fields.items() if tag in single
    ):
        return []  # the usual case, decided without building a message
    problems: list[Problem] = []
    for name, meaning in rules.required.items():
        if _q(name) not in fields:
            need = f"at least one {name}" if name in rules.repeatable else f"exactly one {name}"
            problems.append(
                problem_at(
                    header, f"MessageHeader has no {name} ({meaning}); {rules.label} needs {need}"
                )
            )
    for name in rules.allowed:
        if name in rules.repeatable:
            continue
        found = fields.get(_q(name), [])
        need = "exactly one" if name in rules.required else "at most one"
        for extra in found[1:]:
            problems.append(
                problem_at(
                    extra, f"{name} appears {len(found)} times in MessageHeader; {need} is allowed"
                )
            )
    return problems


class _Verdicts:
    """Where a finding goes: always an error, or what the policy says for its rule."""

    def __init__(
        self, policy: ValidationPolicy, errors: list[Problem], warnings: list[Problem]
    ) -> None:
        self.policy, self.errors, self.warnings = policy, errors, warnings

    def error(self, element: etree._Element, message: str) -> None:
        self.errors.append(problem_at(element, message))

    def wants(self, rule: str) -> bool:
        """Whether findings of *rule* are reported at all (skip the work when accepted)."""
        return bool(getattr(self.policy, rule) != "accept")

    def rule(self, rule: str, element: etree._Element, finding: str) -> None:
        action = getattr(self.policy, rule)
        setting = f'validation.{rule} = "{action}"'
        if action == "reject":
            self.errors.append(problem_at(element, f"{finding}; this hub refuses it ({setting})"))
        elif action == "warn":
            self.warnings.append(
                problem_at(element, f"{finding}; accepted with a warning ({setting})")
            )


def _status_description(
    fields: Mapping[str, list[etree._Element]], kind: str, verdicts: _Verdicts
) -> None:
    """A rejection (02) must say why; a recall request (13) should (policy)."""
    if kind != "status" or _STATUS_CODE not in fields:
        return
    code = fields[_STATUS_CODE][0]
    if text_of(fields.get(_DESCRIPTION, [None])[0]):
        return
    if text_of(code) == "02":
        verdicts.error(code, "StatusCode 02 (rejected) needs a Description giving the reason")
    elif text_of(code) == "13":
        verdicts.rule(
            "recall_without_reason",
            code,
            "StatusCode 13 (recall request) should give the reason in Description",
        )


def _code_number(
    fields: Mapping[str, list[etree._Element]], kind: str, verdicts: _Verdicts
) -> None:
    """QCVN 102 allows 11 characters; what the hub can store (64) is the XSD's limit."""
    if kind != "edoc" or not verdicts.wants("code_number_length"):
        return
    numbers = (n for code in fields.get(_CODE, ()) for n in children(code, _CODE_NUMBER))
    for number in numbers:
        value = " ".join(text_of(number).split())  # xs:token: spaces around do not count
        if len(value) > CODE_NUMBER_LIMIT:
            verdicts.rule(
                "code_number_length",
                number,
                f"CodeNumber {_quote(value)} is {len(value)} characters long; "
                f"QCVN 102 allows at most {CODE_NUMBER_LIMIT}",
            )


_DOCUMENT_ID = re.compile(
    r"(?P<issuer>[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}),"
    r"(?P<date>[0-9]{4}/[0-9]{2}/[0-9]{2}),[^,/]+/[^,]+"
)
_DOCUMENT_ID_FORM = (
    "<issuer code>,<yyyy/MM/dd>,<number>/<notation> (e.g. 000.00.00.G22,2015/09/30,7816/VPCP-TTĐT)"
)


def _document_id(element: etree._Element, verdicts: _Verdicts) -> None:
    """A DocumentId (header, ResponseFor, Bussiness, ReplacementInfo) in the QCVN 102 form.

    Only a policy matter: the hub treats the id as an opaque string and never parses it to route.
    """
    value = " ".join(text_of(element).split())
    if not value:
        return  # an empty ResponseFor placeholder; a required one is a schema error
    match = _DOCUMENT_ID.fullmatch(value)
    if match is None:
        finding = f"DocumentId {_quote(value)} is not in the form {_DOCUMENT_ID_FORM}"
    elif not _exists(match["date"], "%Y/%m/%d"):
        finding = f"DocumentId {_quote(value)} holds the date {match['date']}, which does not exist"
    else:
        return
    verdicts.rule("document_id", element, finding)


_DATED: Mapping[str, tuple[re.Pattern[str], str, str]] = {
    f"{{{NS}}}{name}": (re.compile(pattern), strptime, what)
    for name, pattern, strptime, what in (
        ("PromulgationDate", r"[0-9]{4}/[0-9]{2}/[0-9]{2}", "%Y/%m/%d", "date"),
        ("DueDate", r"[0-9]{4}/[0-9]{2}/[0-9]{2}", "%Y/%m/%d", "date"),
        (
            "Timestamp",
            r"[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
            "%Y/%m/%d %H:%M:%S",
            "date and time",
        ),
    )
}


def _date(element: etree._Element, verdicts: _Verdicts) -> None:
    """A date in the right form (the XSD checks the form) that does not exist: 2014/02/30."""
    form, strptime, what = _DATED[element.tag]
    value = " ".join(text_of(element).split())
    if form.fullmatch(value) and not _exists(value, strptime):
        name = etree.QName(element).localname
        verdicts.rule(
            "impossible_date",
            element,
            f"{name} {_quote(value)} has the right form, but no such {what} exists",
        )


def _exists(value: str, strptime: str) -> bool:
    """Whether *value*, already in the digit layout of *strptime*, is a real date (and time).

    Built from the digits: ``strptime`` gives the same answers but costs five times as much.
    """
    try:
        if strptime == "%Y/%m/%d":
            dt.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
        else:  # "%Y/%m/%d %H:%M:%S"; naive on purpose: only whether it exists
            dt.datetime(
                int(value[0:4]),
                int(value[5:7]),
                int(value[8:10]),
                int(value[11:13]),
                int(value[14:16]),
                int(value[17:19]),
            )
    except ValueError:
        return False
    return True


def _signature_slot(root: etree._Element) -> list[Problem]:
    """The XSD lets any XMLDSig element into the signature slot; only Signature belongs there."""
    header = descend(root, _ENVELOPE, _HEADER)
    if header is None:
        return []
    return [
        problem_at(
            child,
            f"ds:{etree.QName(child).localname} is not allowed in edXMLHeader; "
            "only a ds:Signature may be there",
        )
        for child in header
        if child.tag.__class__ is str
        and child.tag.startswith(_DS_BRACE)
        and child.tag != _DS_SIGNATURE
    ]


def _values(
    root: etree._Element,
    header: etree._Element | None,
    verdicts: _Verdicts,
    *,
    cleared: bool = False,
) -> None:
    """The rules on values anywhere in the package (agency codes, DocumentIds, dates), from one
    pass over the elements they concern; lxml picks those out without waking the rest.
    *cleared*: the gate has cleared agency codes and dates (:func:`_cleared`).

    Nothing inside a Signature is a value of the package. Findings are reported rule by rule,
    agency codes first, each in document order.
    """
    tags: tuple[str, ...] = ()
    if not cleared:
        tags += (_ORGAN_ID,)
        if verdicts.wants("impossible_date"):
            tags += tuple(_DATED)
    if verdicts.wants("document_id"):
        tags += (_DOCUMENT_ID_TAG,)
    if not tags:
        return  # the usual case: a cleared package, and DocumentIds left alone (the default)
    tags += _SIGNATURES
    organ_ids: list[etree._Element] = []
    document_ids: list[etree._Element] = []
    dates: list[etree._Element] = []
    by_tag = {_ORGAN_ID: organ_ids, _DOCUMENT_ID_TAG: document_ids}
    in_signature: set[etree._Element] = set()
    for element in root.iter(*tags):
        if in_signature and element in in_signature:
            continue
        tag = element.tag
        if tag in _SIGNATURES:
            in_signature.update(element.iter(*tags))
        else:
            by_tag.get(tag, dates).append(element)
    for organ_id in organ_ids:
        _organ_id(organ_id, header, verdicts)
    for document_id in document_ids:
        _document_id(document_id, verdicts)
    for date in dates:
        _date(date, verdicts)


def _organ_id(organ_id: etree._Element, header: etree._Element | None, verdicts: _Verdicts) -> None:
    """Strict agency codes where the hub routes by them (always); elsewhere the policy decides."""
    value = text_of(organ_id)
    if _STRICT_ORGAN_ID.fullmatch(value):
        return
    parent = organ_id.getparent()
    if parent is not None and parent.tag in _ROUTING and parent.getparent() is header:
        owner = etree.QName(parent).localname
        what = "is empty" if not value else f"{_quote(value)} is not an agency code"
        verdicts.error(
            organ_id,
            f"{owner}/OrganId {what}; the hub routes by it, "
            f"so it must have the QCVN 102 form {_ORGAN_ID_FORM}",
        )
    elif parent is not None and parent.tag == _q("ResponseFor") and not value:
        return  # an empty ResponseFor placeholder, seen in the wild
    elif parent is not None and parent.tag == _q("TraceHeader") and value.lower() in ("", "null"):
        what = "is empty" if not value else f"is {_quote(value)}"
        verdicts.rule(
            "null_trace_organ_id", organ_id, f"TraceHeader/OrganId {what}: it names no agency"
        )
    else:
        verdicts.rule("agency_code", organ_id, _loose_organ_id(value))


def _loose_organ_id(value: str) -> str:
    if not value:
        return "OrganId is empty: it names no agency"
    return f"OrganId {_quote(value)} is not in the QCVN 102 form {_ORGAN_ID_FORM}"


_DS_BRACE = f"{{{DS_NS}}}"
_DS_SIGNATURE = f"{_DS_BRACE}Signature"
_SIGNATURES = (f"{{{NS}}}Signature", _DS_SIGNATURE)


# ---------------------------------------------------------------------------------- helpers


def _message_header(root: etree._Element) -> etree._Element | None:
    return descend(root, _ENVELOPE, _HEADER, _MESSAGE_HEADER)


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
    return problem_at(telltale if telltale is not None else root, message)


def _by_line(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 30))
