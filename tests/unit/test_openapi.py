"""hub/openapi.json: a well-formed OpenAPI 3.1 document that says exactly what the app does.

No server is started: the routes are read from the application object built by
:func:`hub.api.create_app`, and the answer shapes from the functions that build them.
``jsonschema`` is not a dependency; when it is importable, the component schemas are also
checked against the JSON Schema 2020-12 meta-schema, otherwise the checks here are by hand.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import jsonschema
import pytest

import hub
from hub import deliveries, errors, intake
from hub.api import OPENAPI, create_app
from hub.context import HubContext
from hub.directory import Directory
from hub.edxml.model import Priority, StatusCode
from hub.states import AckResult, Transport

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "hub" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


@pytest.fixture(scope="module")
def raw() -> str:
    return SPEC_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def spec(raw: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(raw))


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return cast(dict[str, Any], spec["components"]["schemas"][name])


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only references inside the document are allowed"
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


# --- (a) a valid OpenAPI 3.1 document -------------------------------------------------------


def test_file_is_formatted_json(raw: str, spec: dict[str, Any]) -> None:
    assert raw == json.dumps(spec, indent=2, ensure_ascii=False) + "\n", (
        "hub/openapi.json must be formatted with 2-space indentation, ensure_ascii=False, "
        "and end with one newline"
    )


def test_top_level(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    assert set(spec) <= {
        "openapi",
        "info",
        "jsonSchemaDialect",
        "servers",
        "paths",
        "webhooks",
        "components",
        "security",
        "tags",
        "externalDocs",
    } | {k for k in spec if k.startswith("x-")}
    assert spec["info"]["title"]
    assert spec["info"]["version"] == importlib.metadata.version("lienthong") == hub.__version__
    assert spec["paths"], "no paths"


def test_every_operation_is_complete(spec: dict[str, Any]) -> None:
    seen_ids: set[str] = set()
    declared_tags = {t["name"] for t in spec.get("tags", [])}
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        assert path.startswith("/"), where
        assert op.get("responses"), f"{where} has no responses"
        for status, response in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", status), f"{where}: {status}"
            if "$ref" not in response:
                assert response.get("description"), f"{where} {status} has no description"
        assert op.get("summary") and op.get("description"), f"{where} is not described"
        assert op.get("operationId"), f"{where} has no operationId"
        assert op["operationId"] not in seen_ids, f"operationId {op['operationId']} repeats"
        seen_ids.add(op["operationId"])
        assert set(op.get("tags", [])) <= declared_tags, f"{where} uses an undeclared tag"


def test_path_parameters_are_declared(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        params = [
            resolve(spec, p["$ref"]) if "$ref" in p else p
            for p in spec["paths"][path].get("parameters", []) + op.get("parameters", [])
        ]
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), f"{method.upper()} {path}"
        for p in params:
            assert p["in"] in {"path", "query", "header", "cookie"}
            assert "schema" in p or "content" in p, f"{method.upper()} {path}: {p['name']}"
            if p["in"] == "path":
                assert p.get("required") is True, f"{method.upper()} {path}: {p['name']}"


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    refs = [(w, n["$ref"]) for w, n in walk(spec) if isinstance(n, dict) and "$ref" in n]
    assert refs, "expected reusable components"
    for where, ref in refs:
        assert ref.startswith("#/"), f"{where}: {ref} points outside the document"
        resolve(spec, ref)


def test_every_component_is_used(spec: dict[str, Any]) -> None:
    used = {node["$ref"] for _, node in walk(spec) if isinstance(node, dict) and "$ref" in node}
    for kind, members in spec["components"].items():
        if kind == "securitySchemes":
            continue
        for name in members:
            assert f"#/components/{kind}/{name}" in used, f"components/{kind}/{name} is unused"


def test_security(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    for requirement in spec["security"]:
        assert set(requirement) <= set(schemes)
    for path, method, op in operations(spec):
        for requirement in op.get("security", []):
            assert set(requirement) <= set(schemes), f"{method.upper()} {path}"
    public = {(path, method) for path, method, op in operations(spec) if op.get("security") == []}
    assert public == {("/v1/openapi.json", "get"), ("/healthz", "get")}


def test_schemas_are_sound_by_hand(spec: dict[str, Any]) -> None:
    for where, node in walk(spec["components"]["schemas"], "#/components/schemas"):
        # A "properties" map and example values are not schemas themselves.
        if not isinstance(node, dict) or re.search(r"/(properties|examples?)(/\d+)?$", where):
            continue
        if "type" in node:
            kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
            assert set(kinds) <= JSON_TYPES, f"{where}: type {node['type']}"
        if isinstance(node.get("required"), list) and isinstance(node.get("properties"), dict):
            missing = set(node["required"]) - set(node["properties"])
            assert not missing, f"{where}: required {missing} are not properties"
        if "enum" in node:
            values = node["enum"]
            assert isinstance(values, list) and values, f"{where}: empty enum"
            assert len(values) == len({json.dumps(v) for v in values}), f"{where}: repeats"


def test_schemas_are_valid_json_schema() -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    for name, sub in spec["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(sub)
        except jsonschema.SchemaError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"components/schemas/{name}: {exc.message}")


# --- (b) the document and the app agree ------------------------------------------------------


def app_routes() -> set[tuple[str, str]]:
    ctx = HubContext(hub_id="openapi-test", store=cast(Any, None), directory=Directory([]))
    # With the national-axis facade: the document describes its optional paths too.
    app = create_app(ctx, max_body_bytes=1024 * 1024, facade=True)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    # aiohttp registers HEAD beside every GET by itself; the document describes the GETs.
    heads = {(m, p) for m, p in routes if m == "head"}
    assert heads <= {("head", p) for m, p in routes if m == "get"}
    assert app[OPENAPI] == SPEC_PATH.read_bytes(), "the app must serve hub/openapi.json as is"
    return routes - heads


def test_every_route_is_documented_and_every_documented_path_exists(spec: dict[str, Any]) -> None:
    in_app = app_routes()
    in_doc = {(method, path) for path, method, _ in operations(spec)}
    assert in_app - in_doc == set(), "routes the document does not describe"
    assert in_doc - in_app == set(), "documented operations the app does not have"


def _raised_codes() -> dict[str, set[int]]:
    """Every problem ``code`` the hub can answer, with its HTTP status, read with :mod:`ast`.

    A call of an error class with ``code="…"`` (or ``code="a" if … else "b"``) gives those
    codes; without ``code=`` it gives the class's own code; ``_error("…", …)`` in signing makes
    a SignatureError; the status → code table in hub/api.py gives its own statuses.
    ConfigError stops start-up and never reaches a client.
    """
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.LienthongError)
    }
    found: dict[str, set[int]] = {}

    def constants(node: ast.expr) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return constants(node.body) + constants(node.orelse)
        return []

    def add(codes: list[str], status: int) -> None:
        for code in codes:
            found.setdefault(code, set()).add(status)

    for file in sorted([*(ROOT / "hub").rglob("*.py"), *(ROOT / "signing").rglob("*.py")]):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and file.name == "api.py" and node.keys:
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(key.value, int):
                        add(constants(value), key.value)
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "_error" and node.args:
                add(constants(node.args[0]), errors.SignatureError.status)
            if name in classes and name != "ConfigError" and file.name != "errors.py":
                cls = classes[name]
                given = [kw.value for kw in node.keywords if kw.arg == "code"]
                add(constants(given[0]) if given else [cls.code], cls.status)
    return found


def test_problem_codes_match_the_code(spec: dict[str, Any]) -> None:
    documented = set(schema(spec, "ProblemCode")["enum"])
    raised = _raised_codes()
    assert set(raised) - documented == set(), "codes the hub answers that are not documented"
    assert documented - set(raised) == set(), "documented codes the hub never answers"
    table = schema(spec, "ProblemCode")["description"]
    for code, statuses in raised.items():
        assert len(statuses) == 1, f"{code} is answered with several statuses {statuses}"
        assert f"| `{code}` | {min(statuses)} |" in table, f"ProblemCode's table: {code}"


def test_error_responses_list_codes_of_their_status(spec: dict[str, Any]) -> None:
    status_of = {code: min(statuses) for code, statuses in _raised_codes().items()}
    for path, method, op in operations(spec):
        for status, response in op["responses"].items():
            if "$ref" in response:
                response = resolve(spec, response["$ref"])
            content = response.get("content", {})
            if "application/problem+json" not in content:
                continue
            where = f"{method.upper()} {path} {status}"
            listed = re.findall(r"`([a-z_.]+)`", response["description"].split("codes:")[-1])
            assert listed, f"{where}: name the possible codes"
            for code in listed:
                assert status_of.get(code) == int(status), f"{where}: {code}"
            example = content["application/problem+json"]["example"]
            assert example["code"] in listed, where
            assert example["status"] == int(status), where
            assert example["type"].endswith("/" + example["code"]), where
            assert set(example) <= set(schema(spec, "Problem")["properties"]), where


def test_enums_match_the_code(spec: dict[str, Any]) -> None:
    assert schema(spec, "TransportState")["enum"] == [t.value for t in Transport]
    assert schema(spec, "StatusCode")["enum"] == [c.value for c in StatusCode]
    assert schema(spec, "Priority")["enum"] == [int(p) for p in Priority]
    assert schema(spec, "AckRequest")["properties"]["result"]["enum"] == [
        a.value for a in AckResult
    ]


def test_inbox_parameters_match_the_limits(spec: dict[str, Any]) -> None:
    params = {p["name"]: p["schema"] for p in spec["paths"]["/v1/inbox"]["get"]["parameters"]}
    assert params["wait"]["maximum"] == deliveries.MAX_WAIT_SECONDS
    assert params["wait"]["minimum"] == 0
    assert params["limit"]["maximum"] == deliveries.MAX_INBOX_LIMIT
    assert params["limit"]["minimum"] == 1


def _check_shape(spec: dict[str, Any], name: str, value: dict[str, Any]) -> None:
    """The keys of *value* are the schema's properties, and every required one is there."""
    sub = schema(spec, name)
    assert set(value) <= set(sub["properties"]), (
        f"{name}: undocumented {set(value) - set(sub['properties'])}"
    )
    assert set(sub["required"]) <= set(value), (
        f"{name}: missing {set(sub['required']) - set(value)}"
    )
    for key, prop in sub["properties"].items():
        if key in value and isinstance(value[key], dict) and "properties" in prop:
            assert set(value[key]) == set(prop["properties"]), f"{name}.{key}"


NOW = datetime(2026, 11, 22, 3, 15, 2, tzinfo=UTC)


def test_receipts_match_the_schemas(spec: dict[str, Any]) -> None:
    doc = SimpleNamespace(
        id="d", package_sha256="0" * 64, size=10, sender_code="000.00.00.H26", received_at=NOW
    )
    delivery = SimpleNamespace(id="x", recipient_code="000.00.31.H26", state="queued")
    ctx = cast(Any, SimpleNamespace(hub_id="h"))
    signed = SimpleNamespace(id="r", kind="submission", jws="a.b.c")
    receipt = intake._receipt(
        ctx, cast(Any, doc), [cast(Any, delivery)], duplicate=False, signed=cast(Any, signed)
    )
    _check_shape(spec, "Receipt", receipt)
    _check_shape(spec, "DeliveryRef", receipt["deliveries"][0])
    _check_shape(spec, "SignedReceipt", receipt["signed_receipt"])

    record = SimpleNamespace(
        id="s",
        document_id="d",
        status_code="03",
        target_code="000.00.00.H26",
        package_sha256="0" * 64,
        received_at=NOW,
    )
    _check_shape(spec, "StatusReceipt", intake._status_answer(cast(Any, record), "x", True))


def test_inbox_items_match_the_schema(spec: dict[str, Any]) -> None:
    delivery = SimpleNamespace(
        id="x",
        kind="document",
        priority=3,
        state="queued",
        created_at=NOW,
        note=None,
        lease_until=None,
    )
    doc = SimpleNamespace(
        id="d",
        sender_code="000.00.00.H26",
        edxml_document_id="e",
        subject="s",
        package_sha256="0" * 64,
    )
    status = SimpleNamespace(
        id="s", status_code="03", reporter_code="000.00.31.H26", package_sha256="1" * 64
    )
    document_item = deliveries._item(cast(Any, delivery), cast(Any, doc), None)
    status_item = deliveries._item(cast(Any, delivery), cast(Any, doc), cast(Any, status))
    _check_shape(spec, "InboxItem", document_item)
    _check_shape(spec, "InboxItem", status_item)
    leased = deliveries._item(
        cast(Any, SimpleNamespace(**{**vars(delivery), "lease_until": NOW})), cast(Any, doc), None
    )
    _check_shape(spec, "InboxItem", leased)
    assert leased["lease_until"] == NOW.isoformat()
    assert set(status_item) - set(document_item) == {"status_id", "status_code", "reporter"}
    receipt = SimpleNamespace(id="r")
    receipt_item = deliveries._item(cast(Any, delivery), cast(Any, doc), None, cast(Any, receipt))
    _check_shape(spec, "InboxItem", receipt_item)
    assert set(receipt_item) - set(document_item) == {"receipt_id"}
    assert receipt_item["href"] == "/v1/receipts/r"
