"""The validation policy: each rule real packages break, under reject, warn and accept; its
configuration (hub.toml ``[validation]``, env overrides, errors naming file and key); and what
``lienthong validate`` says about every official SDK sample.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import cli
from hub.config import load_settings, load_validation_policy
from hub.context import HubContext
from hub.directory import Directory
from hub.edxml.schema import ACTIONS, ValidationPolicy, check, report_for
from hub.errors import ConfigError
from signing.pki import issue_agency_certificate, new_ca
from tests.support import SAMPLE_STATUS_CODES
from tests.unit.test_config import write_config
from tests.unit.test_schema import DOCUMENT, HEADER, MH, SAMPLES, STATUS, edited, line_of

ROOT = Path(__file__).resolve().parents[2]

# rule -> (template, kind, edit, path of the element at fault, text on its line, words said)
CASES: dict[str, tuple[str, str, tuple[str, str], str, str, str]] = {
    "agency_code": (
        DOCUMENT,
        "edoc",
        ("<TraceHeader><OrganId>000.00.00.G22", "<TraceHeader><OrganId>01.02.G22"),
        f"{HEADER}/TraceHeaderList/TraceHeader/OrganId",
        "01.02.G22",
        "OrganId '01.02.G22' is not in the QCVN 102 form",
    ),
    "null_trace_organ_id": (
        DOCUMENT,
        "edoc",
        ("<TraceHeader><OrganId>000.00.00.G22", "<TraceHeader><OrganId>null"),
        f"{HEADER}/TraceHeaderList/TraceHeader/OrganId",
        ">null<",
        "TraceHeader/OrganId is 'null': it names no agency",
    ),
    "code_number_length": (
        DOCUMENT,
        "edoc",
        ("<CodeNumber>12<", "<CodeNumber>123456789012<"),
        f"{MH}/Code/CodeNumber",
        "123456789012",
        "CodeNumber '123456789012' is 12 characters long; QCVN 102 allows at most 11",
    ),
    "document_id": (
        DOCUMENT,
        "edoc",
        (
            "<DocumentId>000.00.00.G22,2024/01/15,12/VPCP-TTĐT",
            "<DocumentId>9fbfbad2-f1f8-4256-a2eb-50fb1061cddb",
        ),
        f"{MH}/DocumentId",
        "9fbfbad2",
        "DocumentId '9fbfbad2-f1f8-4256-a2eb-50fb1061cddb' is not in the form "
        "<issuer code>,<yyyy/MM/dd>,<number>/<notation>",
    ),
    "impossible_date": (
        DOCUMENT,
        "edoc",
        ("<PromulgationDate>2024/01/15", "<PromulgationDate>2014/02/30"),
        f"{MH}/PromulgationInfo/PromulgationDate",
        "2014/02/30",
        "PromulgationDate '2014/02/30' has the right form, but no such date exists",
    ),
    "recall_without_reason": (
        STATUS,
        "status",
        (
            "<StatusCode>03</StatusCode>\n        <Description>Đã vào sổ</Description>",
            "<StatusCode>13</StatusCode>",
        ),
        f"{MH}/StatusCode",
        "<StatusCode>13",
        "StatusCode 13 (recall request) should give the reason in Description",
    ),
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == set(ValidationPolicy.rules())


@pytest.mark.parametrize("rule", sorted(CASES))
@pytest.mark.parametrize("action", ACTIONS)
def test_each_rule_under_each_action(rule: str, action: str) -> None:
    template, kind, edit, path, needle, says = CASES[rule]
    tree, text = edited(template, edit)
    report = check(tree, kind, ValidationPolicy(**{rule: action}))  # type: ignore[arg-type]
    if action == "accept":
        assert report.errors == () and report.warnings == ()
        return
    found = report.errors if action == "reject" else report.warnings
    other = report.warnings if action == "reject" else report.errors
    assert other == ()
    assert len(found) == 1, [str(p) for p in found]
    (problem,) = found
    assert (problem.path, problem.line) == (path, line_of(text, needle))
    assert problem.message.startswith(says)
    # The message says what the hub does and which setting decides it.
    assert f'(validation.{rule} = "{action}")' in problem.message
    assert ("this hub refuses it" if action == "reject" else "accepted with a warning") in (
        problem.message
    )


def test_the_defaults() -> None:
    assert ValidationPolicy().as_dict() == {
        "agency_code": "warn",
        "null_trace_organ_id": "warn",
        "code_number_length": "reject",
        "document_id": "accept",
        "impossible_date": "warn",
        "recall_without_reason": "warn",
    }


def test_each_default_in_action() -> None:
    """Under the defaults: CodeNumber refused; DocumentId silent; every other rule a warning."""
    for rule, (template, kind, edit, _, _, _) in CASES.items():
        report = check(edited(template, edit)[0], kind)
        default = getattr(ValidationPolicy(), rule)
        assert (len(report.errors), len(report.warnings)) == {
            "reject": (1, 0),
            "warn": (0, 1),
            "accept": (0, 0),
        }[default], rule


def test_agency_code_covers_response_for_receiver_and_replacement() -> None:
    tree, text = edited(
        DOCUMENT,
        ("<ResponseFor><OrganId></OrganId>", "<ResponseFor><OrganId>28.22.H17</OrganId>"),
        (
            "</TraceHeaderList>",
            "<Bussiness><BussinessDocType>2</BussinessDocType><BussinessDocumentInfo>"
            "<ReceiverList><Receiver><OrganId>vxp.saas.03</OrganId><ReceiverType>1</ReceiverType>"
            "</Receiver></ReceiverList></BussinessDocumentInfo></Bussiness>\n</TraceHeaderList>",
        ),
    )
    report = check(tree, "edoc", ValidationPolicy(agency_code="reject"))
    assert [(p.path, p.line) for p in report.errors] == [
        (f"{MH}/ResponseFor/OrganId", line_of(text, "28.22.H17")),
        (
            f"{HEADER}/TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver/OrganId",
            line_of(text, "vxp.saas.03"),
        ),
    ]
    assert check(tree, "edoc", ValidationPolicy(agency_code="accept")).ok


def test_from_and_to_codes_are_always_strict() -> None:
    """The hub routes by them: no policy can let a shortened code through."""
    tree, _ = edited(DOCUMENT, ("000.00.00.H14", "28.22.H17"))
    lenient = ValidationPolicy(**dict.fromkeys(ValidationPolicy.rules(), "accept"))  # type: ignore[arg-type]
    error = check(tree, "edoc", lenient).errors
    assert [p.path for p in error] == [f"{MH}/To[2]/OrganId"]


def test_a_rejection_needs_its_reason_whatever_the_policy() -> None:
    tree, _ = edited(STATUS, ("<StatusCode>03", "<StatusCode>02"), ("Đã vào sổ", ""))
    assert not check(tree, "status", ValidationPolicy(recall_without_reason="accept")).ok


def test_the_schema_keeps_only_hard_limits() -> None:
    """What the hub cannot store is an error under any policy (the XSD says so)."""
    lenient = ValidationPolicy(code_number_length="accept", document_id="accept")
    tree, _ = edited(DOCUMENT, ("<CodeNumber>12<", "<CodeNumber>" + "1" * 64 + "<"))
    assert check(tree, "edoc", lenient).ok
    tree, _ = edited(DOCUMENT, ("<CodeNumber>12<", "<CodeNumber>" + "1" * 65 + "<"))
    error = check(tree, "edoc", lenient).errors
    assert [p.message for p in error] == [
        "CodeNumber is 65 characters long; at most 64 are allowed"
    ]
    long_id = "x" * 501
    tree, _ = edited(
        DOCUMENT, ("<DocumentId>000.00.00.G22,2024/01/15,12/VPCP-TTĐT", f"<DocumentId>{long_id}")
    )
    error = check(tree, "edoc", lenient).errors
    assert [p.message for p in error] == [
        "DocumentId is 501 characters long; at most 500 are allowed"
    ]


def test_impossible_timestamps_and_due_dates() -> None:
    tree, text = edited(
        DOCUMENT,
        ("2024/01/15 08:00:00", "2024/01/15 24:00:00"),
        ("<Content>", "<DueDate>2023/02/29</DueDate>\n<Content>"),
    )
    warnings = check(tree, "edoc").warnings
    assert [(p.path, p.line) for p in warnings] == [
        (f"{MH}/DueDate", line_of(text, "<DueDate>")),
        (f"{HEADER}/TraceHeaderList/TraceHeader/Timestamp", line_of(text, "24:00:00")),
    ]
    assert "no such date and time exists" in warnings[1].message
    # 2024 is a leap year.
    tree, _ = edited(DOCUMENT, ("<PromulgationDate>2024/01/15", "<PromulgationDate>2024/02/29"))
    assert check(tree, "edoc").warnings == ()


def test_a_document_id_with_an_impossible_date_is_the_document_id_rule() -> None:
    """The id is opaque: its date is judged only under validation.document_id."""
    bad = "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT"
    tree, _ = edited(
        DOCUMENT, ("000.00.00.G22,2024/01/15,12/VPCP-TTĐT</DocumentId>", f"{bad}</DocumentId>")
    )
    assert check(tree, "edoc") == check(edited(DOCUMENT)[0], "edoc")
    (warning,) = check(tree, "edoc", ValidationPolicy(document_id="warn")).warnings
    assert warning.message.startswith(f"DocumentId '{bad}' holds the date 2014/02/30")


def test_a_policy_refuses_unknown_actions() -> None:
    with pytest.raises(ValueError, match="is not one of reject, warn, accept"):
        ValidationPolicy(code_number_length="maybe")  # type: ignore[arg-type]


def test_the_hub_context_carries_the_safe_defaults() -> None:
    ctx = HubContext(hub_id="h", store=None, directory=Directory([]))  # type: ignore[arg-type]
    assert ctx.validation == ValidationPolicy()


# ------------------------------------------------------------------------- configuration


@pytest.fixture(scope="module")
def cert_pem() -> bytes:
    return issue_agency_certificate(new_ca("Policy CA"), code="000.00.00.H26", name="UBND").cert_pem


def test_the_committed_configuration_spells_out_the_defaults() -> None:
    committed = ROOT / "config" / "hub.toml"
    assert load_validation_policy(committed, env={}) == ValidationPolicy()
    text = committed.read_text(encoding="utf-8")
    for rule in ValidationPolicy.rules():
        assert f'\n{rule} = "{getattr(ValidationPolicy(), rule)}"' in text, rule


def test_settings_read_the_validation_section(tmp_path: Path, cert_pem: bytes) -> None:
    section = '[validation]\ncode_number_length = "warn"\ndocument_id = "warn"\n'
    settings = load_settings(write_config(tmp_path, cert_pem, section), env={})
    assert settings.validation == ValidationPolicy(code_number_length="warn", document_id="warn")
    assert load_settings(write_config(tmp_path, cert_pem), env={}).validation == ValidationPolicy()


def test_the_environment_overrides_a_rule(tmp_path: Path, cert_pem: bytes) -> None:
    section = '[validation]\ncode_number_length = "warn"\n'
    env = {
        "LIENTHONG_VALIDATION_CODE_NUMBER_LENGTH": "accept",
        "LIENTHONG_VALIDATION_IMPOSSIBLE_DATE": "reject",
    }
    settings = load_settings(write_config(tmp_path, cert_pem, section), env=env)
    assert settings.validation == ValidationPolicy(
        code_number_length="accept", impossible_date="reject"
    )


@pytest.mark.parametrize(
    ("section", "env", "key", "says"),
    [
        (
            '[validation]\ncode_number_length = "wran"\n',
            {},
            "validation.code_number_length",
            "'wran' is not one of 'reject', 'warn', 'accept'",
        ),
        (
            "[validation]\nimpossible_date = true\n",
            {},
            "validation.impossible_date",
            "True is not one of",
        ),
        (
            "",
            {"LIENTHONG_VALIDATION_AGENCY_CODE": "ignore"},
            "validation.agency_code",
            "LIENTHONG_VALIDATION_AGENCY_CODE='ignore' is not one of",
        ),
        (
            '[validation]\nagency_codes = "warn"\n',
            {},
            "validation.agency_codes",
            "is not a validation rule; the rules are agency_code, null_trace_organ_id",
        ),
        ('validation = "strict"\n', {}, "validation", "must be a table"),
    ],
)
def test_a_bad_validation_setting_names_file_key_and_problem(
    tmp_path: Path, cert_pem: bytes, section: str, env: dict[str, str], key: str, says: str
) -> None:
    path = write_config(tmp_path, cert_pem)
    if section.startswith("validation ="):  # a top-level key, not a table
        path.write_text(section + path.read_text(encoding="utf-8"), encoding="utf-8")
    else:
        path = write_config(tmp_path, cert_pem, section)
    for load in (lambda: load_settings(path, env=env), lambda: load_validation_policy(path, env)):
        with pytest.raises(ConfigError) as caught:
            load()
        error = caught.value
        assert (error.file, error.key) == (str(path), key)
        assert says in error.problem, error.problem


# ------------------------------------------------------------------------- the SDK samples


def sdk(name: str) -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"SDK samples not found at {SAMPLES}: place the repository next to shared/")
    return SAMPLES / name


EDXML_NS_SIGNATURE = "a <Signature> element in the edXML namespace"
NO_SIGNATURE = "The package carries no XMLDSig signature"
STATUS_CODES = SAMPLE_STATUS_CODES
# What `lienthong validate` says of each sample under the default policy (README, "The official
# SDK samples"): (valid, kind, code, first error: (line, column, words), signature code, words).
SDK_OUTCOMES: dict[str, tuple[bool, str | None, str | None, Any, str | None, str]] = {
    "edoc.edxml": (
        False,
        None,
        "xml.malformed",
        (116, 39, "Namespace prefix xlink for href on Reference is not defined"),
        None,
        "",
    ),
    "edoc_new.edxml": (
        False,
        None,
        "xml.malformed",
        (1, 1, "4 stray byte(s) before the XML declaration ('1212')"),
        None,
        "",
    ),
    "edoc_update.edxml": (True, "edoc", None, None, "signature.missing", EDXML_NS_SIGNATURE),
    "edoc_replacement.edxml": (True, "edoc", None, None, "signature.missing", EDXML_NS_SIGNATURE),
    "edoc_revocation.edxml": (True, "edoc", None, None, "signature.missing", EDXML_NS_SIGNATURE),
    **{
        name: (True, "status", None, None, "signature.missing", NO_SIGNATURE)
        for name in STATUS_CODES
    },
}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().out


def test_every_sample_has_an_outcome() -> None:
    assert {p.name for p in sdk(".").glob("*.edxml")} == set(SDK_OUTCOMES)


@pytest.mark.parametrize("name", sorted(SDK_OUTCOMES))
def test_validate_each_sdk_sample(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in [v for v in os.environ if v.startswith("LIENTHONG_")]:
        monkeypatch.delenv(var)
    valid, kind, code, error, signature_code, signature_says = SDK_OUTCOMES[name]
    no_config = tmp_path / "none.toml"
    exit_code, out = run_cli(
        capsys, "--config", str(no_config), "validate", str(sdk(name)), "--json"
    )
    report = json.loads(out)
    assert exit_code == (0 if valid else 1)
    assert (report["valid"], report["kind"], report["code"]) == (valid, kind, code)
    assert report["warnings"] == []
    assert report["policy"]["source"] == f"defaults (no hub configuration at {no_config})"
    if error is None:
        assert report["errors"] == []
    else:
        line, column, says = error
        (first,) = report["errors"]
        assert (first["line"], first["column"]) == (line, column)
        assert first["message"].startswith(says)
    if signature_code is None:
        assert report["signature"] == {"checked": False, "valid": None, "problem": None}
    else:
        assert report["signature"]["checked"] is True and report["signature"]["valid"] is False
        assert report["signature"]["problem"]["code"] == signature_code
        assert signature_says in report["signature"]["problem"]["detail"]
    # The same report as the API's, from the same function.
    reported = {k: v for k, v in report.items() if k not in ("file", "policy")}
    assert reported == report_for(sdk(name).read_bytes())

    exit_code, text = run_cli(capsys, "--config", str(no_config), "validate", str(sdk(name)))
    assert exit_code == (0 if valid else 1)
    head = text.splitlines()[0]
    if valid and kind == "status":
        assert head.endswith(f"{name}: valid status package")
        assert f"<edXML:StatusCode>{STATUS_CODES[name]}<" in sdk(name).read_text("utf-8")
    elif valid:
        assert head.endswith(f"{name}: valid document package")
    else:
        assert head.endswith(f"{name}: INVALID (xml.malformed: not well-formed XML)")
        assert f"  error    line {error[0]}:{error[1]}: {error[2]}" in text
    assert f"  signature: {signature_code}:" in text if signature_code else "not checked" in text
    assert f"  policy: defaults (no hub configuration at {no_config})" in text


def test_validate_reads_the_policy_of_the_hub_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """edoc_update.edxml's Bussiness/DocumentId holds 2014/02/30: a warning once asked for."""
    monkeypatch.delenv("LIENTHONG_VALIDATION_DOCUMENT_ID", raising=False)
    config = tmp_path / "hub.toml"
    config.write_text('[validation]\ndocument_id = "warn"\n', encoding="utf-8")
    sample = sdk("edoc_update.edxml")
    exit_code, text = run_cli(capsys, "--config", str(config), "validate", str(sample))
    assert exit_code == 0  # warnings alone never fail
    lines = text.splitlines()
    assert lines[0].endswith("edoc_update.edxml: valid document package with 1 warning")
    assert lines[1] == (
        f"  warning  line {line_of(sample.read_text('utf-8'), '2014/02/30')}, "
        f"{HEADER}/TraceHeaderList/Bussiness/DocumentId: DocumentId "
        "'000.00.00.G22,2014/02/30,7806/VPCP-TTĐT' holds the date 2014/02/30, which does not "
        'exist; accepted with a warning (validation.document_id = "warn")'
    )
    assert lines[-1] == f"  policy: {config} (document_id=warn)"

    # Under the environment's override instead, the same sample is refused.
    monkeypatch.setenv("LIENTHONG_VALIDATION_DOCUMENT_ID", "reject")
    exit_code, out = run_cli(capsys, "--config", str(config), "validate", str(sample), "--json")
    report = json.loads(out)
    assert exit_code == 1
    assert (report["valid"], report["code"]) == (False, "schema.invalid")
    assert report["policy"] == {
        "source": str(config),
        **ValidationPolicy(document_id="reject").as_dict(),
    }


def test_validate_with_a_bad_policy_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[validation]\ndocument_id = "sometimes"\n', encoding="utf-8")
    code = cli.main(["--config", str(config), "validate", str(sdk("status.edxml"))])
    err = capsys.readouterr().err
    assert code == cli.EXIT_CONFIG
    assert f"{config}: validation.document_id: 'sometimes' is not one of" in err


def test_validate_can_be_told_the_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    none = str(tmp_path / "none.toml")
    args = ("--config", none, "validate", str(sdk("status_finish_06.edxml")), "--kind", "edoc")
    exit_code, text = run_cli(capsys, *args, "--json")
    report = json.loads(text)
    assert exit_code == 1
    assert (report["kind"], report["code"]) == ("edoc", "package.kind")
    assert "this is a status package" in report["errors"][0]["message"]


def test_the_two_malformed_samples_once_repaired() -> None:
    """What stands behind the parse error of each (README, "The official SDK samples")."""
    ns = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
    text = sdk("edoc.edxml").read_text("utf-8")
    xlink_only = text.replace(
        "<edXML xmlns=", '<edXML xmlns:xlink="http://www.w3.org/1999/xlink" xmlns=', 1
    )
    (error,) = report_for(xlink_only.encode())["errors"]
    assert error["line"] == line_of(text, "<edXML:AttachmentEncoded>") == 125
    assert error["message"] == "Namespace prefix edXML on AttachmentEncoded is not defined"
    text = text.replace(
        "<edXML xmlns=",
        f'<edXML xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:edXML="{ns}" xmlns=',
        1,
    )
    report = report_for(text.encode())
    assert (report["valid"], report["code"]) == (False, "schema.invalid")
    assert [(e["line"], e["message"]) for e in report["errors"]] == [
        (
            line_of(text, "${__StringFromFile"),
            "ContentTransferEncoded '${__StringFromFile(test.txt,,,)}' is not base64-encoded data",
        )
    ]
    assert [w["line"] for w in report["warnings"]] == [line_of(text, ">01.02.G22<")]
    # Its Signature is an XMLDSig one, but rsa-sha1: refused unless the sender is legacy.
    problem = report["signature"]["problem"]
    assert problem["code"] == "signature.policy" and "SHA-1 is refused" in problem["detail"]

    data = sdk("edoc_new.edxml").read_bytes().removeprefix(b"1212")
    report = report_for(data)
    assert [(e["line"], e["path"]) for e in report["errors"]] == [
        (line_of(data.decode(), ">28.22.H17<"), f"{MH}/To/OrganId")
    ]
    assert report["signature"]["problem"]["code"] == "signature.missing"
