"""Configuration: defaults, env overrides, and errors that name the file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import credential_digest, load_settings
from hub.errors import ConfigError
from signing.pki import issue_agency_certificate, new_ca

DIGEST = credential_digest("token")


@pytest.fixture(scope="module")
def cert_pem() -> bytes:
    return issue_agency_certificate(new_ca("Config CA"), code="000.00.00.H26", name="UBND").cert_pem


def write_config(root: Path, cert_pem: bytes, hub_extra: str = "", agency_extra: str = "") -> Path:
    config = root / "config"
    config.mkdir(exist_ok=True)
    (root / "certs").mkdir(exist_ok=True)
    (root / "certs" / "city.pem").write_bytes(cert_pem)
    (config / "hub.toml").write_text(
        f"""
[hub]
id = "test"
key = "../keys/hub.key"
certificate = "../keys/hub.crt"
{hub_extra}
[directory]
file = "agencies.toml"
""",
        encoding="utf-8",
    )
    (config / "agencies.toml").write_text(
        f"""
[[agency]]
code = "000.00.00.H26"
name = "Ủy ban nhân dân Thành phố Hà Nội"
certificates = ["../certs/city.pem"]
credential_sha256 = "{DIGEST}"
{agency_extra}

[[agency]]
code = "thanhtra.hanoi"
name = "Thanh tra"
role = "auditor"
""",
        encoding="utf-8",
    )
    return config / "hub.toml"


def test_defaults_and_relative_paths(tmp_path: Path, cert_pem: bytes) -> None:
    settings = load_settings(write_config(tmp_path, cert_pem), env={})
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8780)
    assert (
        settings.database_url
        == f"sqlite+aiosqlite:///{(tmp_path / 'var' / 'lienthong.db').resolve()}"
    )
    assert settings.max_body_bytes == 25 * 1024 * 1024
    assert settings.hub_key_path == tmp_path / "config" / "../keys/hub.key"
    city, auditor = settings.agencies
    assert city.name == "Ủy ban nhân dân Thành phố Hà Nội" and city.certificates == (cert_pem,)
    assert auditor.role == "auditor" and auditor.certificates == ()
    assert (settings.retention_days, settings.retention_archive_dir) == (0, None)


def test_retention_settings(tmp_path: Path, cert_pem: bytes) -> None:
    config = write_config(
        tmp_path, cert_pem, '[retention]\ndays = 3650\narchive_dir = "../luu-tru"'
    )
    settings = load_settings(config, env={})
    assert settings.retention_days == 3650
    assert settings.retention_archive_dir == tmp_path / "config" / "../luu-tru"
    overridden = load_settings(config, env={"LIENTHONG_RETENTION_DAYS": "0"})
    assert overridden.retention_days == 0


def test_environment_overrides_every_kind_of_key(tmp_path: Path, cert_pem: bytes) -> None:
    env = {
        "LIENTHONG_HUB_LISTEN": "0.0.0.0:9000",
        "LIENTHONG_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/x",
        "LIENTHONG_LIMITS_MAX_BODY_BYTES": "5_000_000",
        "LIENTHONG_AGENCY_000_00_00_H26_DELIVERY": "push",
        "LIENTHONG_AGENCY_000_00_00_H26_PUSH_URL": "https://dms.hanoi.example/inbox",
    }
    settings = load_settings(write_config(tmp_path, cert_pem), env=env)
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 9000)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.max_body_bytes == 5_000_000
    assert settings.agencies[0].delivery == "push"
    assert settings.agencies[0].push_url == "https://dms.hanoi.example/inbox"


@pytest.mark.parametrize(
    ("hub_extra", "agency_extra", "env", "file", "key", "says"),
    [
        ('listen = "nonsense"', "", {}, "hub.toml", "hub.listen", "HOST:PORT"),
        (
            "",
            "",
            {"LIENTHONG_LIMITS_MAX_BODY_BYTES": "lots"},
            "hub.toml",
            "limits.max_body_bytes",
            "whole number",
        ),
        ("", 'role = "king"', {}, "agencies.toml", "agency 000.00.00.H26.role", "not one of"),
        (
            "",
            'delivery = "push"',
            {},
            "agencies.toml",
            "agency 000.00.00.H26.push_url",
            "URL is required",
        ),
        (
            "",
            'credential_file = "../nowhere"',
            {},
            "agencies.toml",
            "agency 000.00.00.H26.credential_file",
            "does not exist",
        ),
        (
            "[retention]\ndays = 3650",
            "",
            {},
            "hub.toml",
            "retention.archive_dir",
            "is required when retention.days is set",
        ),
        ("", "", {"LIENTHONG_RETENTION_DAYS": "-1"}, "hub.toml", "retention.days", "at least 0"),
        (
            "[retention]\ndays = 'mười năm'",
            "",
            {},
            "hub.toml",
            "retention.days",
            "whole number",
        ),
        (
            "",
            "",
            {"LIENTHONG_AGENCY_000_00_00_H26_CERTIFICATES": ""},
            "agencies.toml",
            "agency 000.00.00.H26.certificates",
            "at least one",
        ),
    ],
)
def test_bad_configuration_names_file_key_and_problem(
    tmp_path: Path,
    cert_pem: bytes,
    hub_extra: str,
    agency_extra: str,
    env: dict[str, str],
    file: str,
    key: str,
    says: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, cert_pem, hub_extra, agency_extra), env=env)
    error = caught.value
    assert error.file.endswith(file) and error.key == key and says in error.problem


def test_agency_code_must_be_a_qcvn_code(tmp_path: Path, cert_pem: bytes) -> None:
    path = write_config(tmp_path, cert_pem)
    agencies = path.parent / "agencies.toml"
    agencies.write_text(
        agencies.read_text(encoding="utf-8").replace(
            'code = "000.00.00.H26"', 'code = "01.02.G22"'
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert "QCVN 102" in caught.value.problem


def test_unreadable_toml_is_reported_with_its_file(tmp_path: Path) -> None:
    bad = tmp_path / "hub.toml"
    bad.write_text("[hub\nid=", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad, env={})
    assert caught.value.file == str(bad) and "not valid TOML" in caught.value.problem


def test_the_committed_example_configuration_parses(tmp_path: Path) -> None:
    """config/agencies.toml names demo material that `demo init` generates; with it, it loads."""
    from hub.demo import directory_entries, init_material

    repo_config = Path(__file__).resolve().parents[2] / "config"
    entries = directory_entries(repo_config / "agencies.toml")
    assert {e.code for e in entries} >= {"000.00.00.G22", "000.00.00.H26"}
    root = tmp_path / "demo"
    init_material(root, entries, "test")
    # Load the committed files against the generated material by pointing ../var/demo at it.
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "var").mkdir()
    (project / "var" / "demo").symlink_to(root)
    for name in ("hub.toml", "agencies.toml"):
        (project / "config" / name).write_bytes((repo_config / name).read_bytes())
    settings = load_settings(project / "config" / "hub.toml", env={})
    assert len(settings.agencies) == len(entries)
    assert all(a.certificates for a in settings.agencies if a.role == "agency")
    assert all(a.credential_sha256 for a in settings.agencies)


def test_agencies_list_reads_the_configured_directory_file(
    tmp_path: Path, cert_pem: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import cli

    config = write_config(tmp_path, cert_pem)
    (config.parent / "agencies.toml").rename(config.parent / "directory.toml")
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'file = "agencies.toml"', 'file = "directory.toml"'
        ),
        encoding="utf-8",
    )
    assert cli.main(["--config", str(config), "agencies", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["code"] for a in listed] == ["000.00.00.H26", "thanhtra.hanoi"]


def test_trust_settings(tmp_path: Path, cert_pem: bytes) -> None:
    config = write_config(
        tmp_path,
        cert_pem,
        hub_extra="""
[trust]
anchors = ["../ca/root.pem"]
crls = ["../ca/root.crl", "https://ca.example.vn/root.crl"]
crl_refresh_seconds = 600
crl_grace_seconds = 7200
""",
        agency_extra="legacy_sha1 = true",
    )
    settings = load_settings(config, env={"LIENTHONG_HUB_KEY_PASSPHRASE": "mat-khau"})
    assert settings.crl_sources == (
        str(tmp_path / "config" / "../ca/root.crl"),
        "https://ca.example.vn/root.crl",
    )
    assert (settings.crl_refresh_seconds, settings.crl_grace_seconds) == (600, 7200)
    assert settings.require_revocation is True
    assert settings.hub_key_passphrase == b"mat-khau"
    assert "mat-khau" not in repr(settings)  # the passphrase is never shown
    assert settings.agencies[0].legacy_sha1 is True
    relaxed = load_settings(config, env={"LIENTHONG_TRUST_REQUIRE_REVOCATION": "false"})
    assert relaxed.require_revocation is False and relaxed.hub_key_passphrase is None


def test_trust_settings_refused(tmp_path: Path, cert_pem: bytes) -> None:
    config = write_config(
        tmp_path,
        cert_pem,
        hub_extra="[trust]\ncrl_refresh_seconds = 600\ncrl_grace_seconds = 600\n",
    )
    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env={})
    assert excinfo.value.key == "trust.crl_grace_seconds"
    with pytest.raises(ConfigError) as excinfo:
        load_settings(write_config(tmp_path, cert_pem, agency_extra='legacy_sha1 = "yes"'), env={})
    assert excinfo.value.key == "agency 000.00.00.H26.legacy_sha1"


def test_a_pkcs12_hub_key_needs_no_certificate_file(tmp_path: Path, cert_pem: bytes) -> None:
    config = write_config(tmp_path, cert_pem)
    text = config.read_text().replace(
        'key = "../keys/hub.key"\ncertificate = "../keys/hub.crt"\n', 'key = "../keys/hub.p12"\n'
    )
    config.write_text(text)
    settings = load_settings(config, env={})
    assert settings.hub_cert_path is None
    config.write_text(text.replace("hub.p12", "hub.pem"))
    with pytest.raises(ConfigError) as excinfo:
        load_settings(config, env={})
    assert excinfo.value.key == "hub.certificate"


def test_delivery_settings_and_per_agency_retry_limits(tmp_path: Path, cert_pem: bytes) -> None:
    from hub.context import HubContext
    from hub.directory import Directory

    config = write_config(
        tmp_path,
        cert_pem,
        hub_extra="[delivery]\nexpire_after_seconds = 60\nmax_attempts = 5\nretry_base_ms = 500\n",
        agency_extra="max_age_seconds = 7200",
    )
    settings = load_settings(config, env={"LIENTHONG_DELIVERY_PUSH_TIMEOUT_SECONDS": "5"})
    d = settings.delivery
    assert (d.expire_after_seconds, d.max_attempts, d.retry_base_ms, d.push_timeout_seconds) == (
        60,
        5,
        500,
        5,
    )
    ctx = HubContext(hub_id="t", store=None, directory=Directory([]), delivery=d)  # type: ignore[arg-type]
    city, auditor = Directory.from_config(settings.agencies)
    policy = ctx.retry_policy_for(city)
    assert (policy.max_attempts, policy.max_age.total_seconds()) == (5, 7200)
    assert policy.base_delay.total_seconds() == 0.5
    assert ctx.retry_policy_for(auditor).max_age.total_seconds() == d.max_age_seconds


@pytest.mark.parametrize(
    ("hub_extra", "agency_extra", "key"),
    [
        ("[delivery]\npush_timeout_seconds = 0\n", "", "delivery.push_timeout_seconds"),
        ("[delivery]\nretry_base_ms = 5000\nretry_max_delay_seconds = 2\n", "", "delivery."),
        ("", "max_attempts = 0", "agency 000.00.00.H26.max_attempts"),
        ("", 'max_age_seconds = "a day"', "agency 000.00.00.H26.max_age_seconds"),
    ],
)
def test_bad_delivery_settings_are_refused(
    tmp_path: Path, cert_pem: bytes, hub_extra: str, agency_extra: str, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, cert_pem, hub_extra, agency_extra), env={})
    assert key in str(caught.value)


GROUPS_DIRECTORY = """
[[agency]]
code = "000.00.00.H26"
name = "UBND Thành phố"
role = "auditor"

[[agency]]
code = "000.00.31.H26"
name = "Quận Ba Đình"
role = "auditor"
parent = "000.00.00.H26"
"""


@pytest.mark.parametrize(
    ("group", "problem"),
    [
        ('code = "nhom"\nname = "x"\nmembers = ["000.00.31.H26"]', "not a QCVN 102 code"),
        ('code = "000.00.31.H26"\nname = "x"\nmembers = ["000.00.31.H26"]', "already an agency"),
        ('code = "000.00.90.H26"\nname = "x"', "needs members, children_of"),
        ('code = "000.00.90.H26"\nname = "x"\nchildren_of = ["000.00.77.H26"]', "not in the"),
        ('code = "000.00.90.H26"\nname = "x"\nmembers = ["000.00.77.H26"]', "not in the"),
        ('code = "000.00.90.H26"\nname = "x"\nmembers = ["000.00.31.H26"]', "not an agency"),
        ('code = "000.00.90.H26"\nmembers = ["000.00.3*.H26"]', "name"),
    ],
)
def test_bad_groups_are_refused_naming_the_group(tmp_path: Path, group: str, problem: str) -> None:
    from hub.config import load_groups

    path = tmp_path / "agencies.toml"
    path.write_text(GROUPS_DIRECTORY + "\n[[group]]\n" + group + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_groups(path)
    assert "group" in str(caught.value) and problem in str(caught.value)


def test_groups_expand_once_from_patterns_and_children(tmp_path: Path, cert_pem: bytes) -> None:
    from hub.directory import Directory

    config = write_config(tmp_path, cert_pem)
    agencies_file = config.parent / "agencies.toml"
    agencies_file.write_text(
        agencies_file.read_text(encoding="utf-8")
        + '\n[[group]]\ncode = "000.00.90.H26"\nname = "Tất cả"\nmembers = ["000.*"]\n'
        + '\n[[group]]\ncode = "000.00.91.H26"\nname = "Trực thuộc"\n'
        + 'children_of = ["000.00.00.H26"]\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    with pytest.raises(ConfigError) as caught:  # nothing is under the city in this directory
        Directory.from_config(settings.agencies, "agencies.toml", settings.groups)
    assert "group 000.00.91.H26.members" in str(caught.value)
    directory = Directory.from_config(settings.agencies, "agencies.toml", settings.groups[:1])
    group = directory.group("000.00.90.H26")
    assert group is not None and group.members == ("000.00.00.H26",)  # the auditor is no member


def test_the_facade_is_off_unless_enabled(tmp_path: Path, cert_pem: bytes) -> None:
    assert load_settings(write_config(tmp_path, cert_pem), env={}).facade_enabled is False
    enabled = write_config(tmp_path, cert_pem, "[facade]\nenabled = true\n")
    assert load_settings(enabled, env={}).facade_enabled is True
    by_env = {"LIENTHONG_FACADE_ENABLED": "yes"}
    assert load_settings(write_config(tmp_path, cert_pem), env=by_env).facade_enabled is True


@pytest.mark.parametrize(
    ("hub_extra", "env", "key", "says"),
    [
        ('[facade]\nenabled = "yes"\n', {}, "facade.enabled", "true or false"),
        ("", {"LIENTHONG_FACADE_ENABLED": "maybe"}, "facade.enabled", "not true or false"),
        ("[facade]\nenable = true\n", {}, "facade.enable", "only one is enabled"),
    ],
)
def test_bad_facade_settings_are_refused(
    tmp_path: Path, cert_pem: bytes, hub_extra: str, env: dict[str, str], key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, cert_pem, hub_extra), env=env)
    assert caught.value.key == key and says in caught.value.problem


def test_logging_and_metrics_settings(tmp_path: Path, cert_pem: bytes) -> None:
    settings = load_settings(write_config(tmp_path, cert_pem), env={})
    assert (settings.log_format, settings.log_level, settings.metrics_token) == (
        "text",
        "warning",
        None,
    )
    (tmp_path / "metrics.token").write_text("  scrape-token\n", encoding="utf-8")
    extra = (
        '\n[logging]\nformat = "json"\nlevel = "info"\n[metrics]\ntoken_file = "../metrics.token"\n'
    )
    settings = load_settings(write_config(tmp_path, cert_pem, hub_extra=extra), env={})
    assert (settings.log_format, settings.log_level) == ("json", "info")
    assert settings.metrics_token == "scrape-token"
    assert "scrape-token" not in repr(settings)

    extra = '\n[metrics]\ntoken_env = "SCRAPE"\n'
    env = {"SCRAPE": "from-env", "LIENTHONG_LOGGING_FORMAT": "json"}
    settings = load_settings(write_config(tmp_path, cert_pem, hub_extra=extra), env=env)
    assert (settings.metrics_token, settings.log_format) == ("from-env", "json")


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ('[logging]\nformat = "xml"', "logging.format", "is not one of 'text', 'json'"),
        ('[logging]\nlevel = "loud"', "logging.level", "is not one of"),
        ('[metrics]\ntoken = "s3cret"', "metrics.token", "never write a token in hub.toml"),
        ('[metrics]\ntoken_env = "UNSET_TOKEN"', "metrics.token_env", "is empty or unset"),
        ('[metrics]\ntoken_file = "../nowhere"', "metrics.token_file", "does not exist"),
        ('[metrics]\npassword = "x"', "metrics.password", "is not a metrics setting"),
    ],
)
def test_bad_logging_and_metrics_settings_are_refused(
    tmp_path: Path, cert_pem: bytes, extra: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, cert_pem, hub_extra="\n" + extra + "\n"), env={})
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert "s3cret" not in str(caught.value)
