"""Federation settings: ``[[peer]]`` in hub.toml, hub accounts and ``via`` agencies in the
directory, and who a peer hub may speak for (hub.directory.Directory.speaks_for)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.config import PeerConfig, credential_digest, load_settings
from hub.directory import Agency, Directory
from hub.errors import ConfigError
from hub.federation import destination, peer_routes
from signing.pki import issue_agency_certificate, new_ca
from tests.unit.test_config import write_config

NATIONAL_ACCOUNT = f"""
[[agency]]
code = "truc.quocgia"
name = "Trục liên thông văn bản quốc gia"
role = "hub"
serves = ["*.*.*.G*"]
credential_sha256 = "{credential_digest("peer-token")}"

[[agency]]
code = "000.00.00.G22"
name = "Văn phòng Chính phủ"
via = "truc.quocgia"
certificates = ["../certs/city.pem"]
"""

PEER = """
[[peer]]
name = "truc.quocgia"
url = "https://truc.example/"
credential_file = "../secrets/national.credential"
routes = ["*.*.*.G*"]
default = true
"""


@pytest.fixture(scope="module")
def cert_pem() -> bytes:
    return issue_agency_certificate(new_ca("Config CA"), code="000.00.00.G22", name="VPCP").cert_pem


def _project(tmp_path: Path, cert_pem: bytes, peer: str = PEER, agencies: str = "") -> Path:
    config = write_config(tmp_path, cert_pem, hub_extra="", agency_extra=agencies)
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "national.credential").write_text("s3cret-at-national\n")
    # [[peer]] tables go after every other table of hub.toml.
    config.write_text(config.read_text(encoding="utf-8") + peer, encoding="utf-8")
    return config


def test_a_peer_with_its_account_and_via_agencies(tmp_path: Path, cert_pem: bytes) -> None:
    settings = load_settings(_project(tmp_path, cert_pem, agencies=NATIONAL_ACCOUNT), env={})
    (peer,) = settings.peers
    assert peer == PeerConfig(
        "truc.quocgia", "https://truc.example", "s3cret-at-national", ("*.*.*.G*",), True
    )
    assert "s3cret" not in repr(settings)  # the credential is never shown
    by_code = {a.code: a for a in settings.agencies}
    assert by_code["truc.quocgia"].role == "hub" and by_code["truc.quocgia"].serves == ("*.*.*.G*",)
    assert by_code["000.00.00.G22"].via == "truc.quocgia"


def test_peer_keys_can_be_overridden_by_the_environment(tmp_path: Path, cert_pem: bytes) -> None:
    env = {
        "LIENTHONG_PEER_TRUC_QUOCGIA_URL": "https://truc2.example",
        "LIENTHONG_PEER_TRUC_QUOCGIA_ROUTES": os.pathsep.join(("*.*.*.G*", "*.*.*.H49")),
    }
    config = _project(tmp_path, cert_pem, agencies=NATIONAL_ACCOUNT)
    (peer,) = load_settings(config, env=env).peers
    assert peer.url == "https://truc2.example" and peer.routes == ("*.*.*.G*", "*.*.*.H49")


def test_the_credential_may_come_from_the_environment(tmp_path: Path, cert_pem: bytes) -> None:
    peer = PEER.replace(
        'credential_file = "../secrets/national.credential"', 'credential_env = "NATIONAL_TOKEN"'
    )
    config = _project(tmp_path, cert_pem, peer, NATIONAL_ACCOUNT)
    settings = load_settings(config, env={"NATIONAL_TOKEN": "from-env"})
    assert settings.peers[0].credential == "from-env"
    with pytest.raises(ConfigError, match=r"peer truc\.quocgia\.credential_env: .*NATIONAL_TOKEN"):
        load_settings(config, env={})


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (
            ('credential_file = "../secrets/national.credential"', 'credential = "inline"'),
            "credential",
            "never write a credential in hub.toml",
        ),
        (('url = "https://truc.example/"', 'url = "ftp://truc"'), "url", "not an http"),
        (('routes = ["*.*.*.G*"]', 'routes = ["G*"]'), "routes", "a code pattern has four"),
        (("default = true", "default = false\nroutes2 = 1"), "routes2", "not a peer setting"),
        (
            ('credential_file = "../secrets/national.credential"', ""),
            "credential_file",
            "exactly one of credential_file and credential_env",
        ),
        (
            ('credential_file = "../secrets/national.credential"', 'credential_file = "../x"'),
            "credential_file",
            "does not exist",
        ),
    ],
)
def test_peer_mistakes_name_the_key(
    tmp_path: Path, cert_pem: bytes, change: tuple[str, str], key: str, message: str
) -> None:
    peer = PEER.replace(*change)
    with pytest.raises(ConfigError) as caught:
        load_settings(_project(tmp_path, cert_pem, peer, NATIONAL_ACCOUNT), env={})
    assert caught.value.key == f"peer truc.quocgia.{key}" and message in caught.value.problem


def test_two_default_peers_are_refused(tmp_path: Path, cert_pem: bytes) -> None:
    second = PEER.replace('name = "truc.quocgia"', 'name = "other"')
    with pytest.raises(ConfigError, match="only one peer can be the default"):
        load_settings(_project(tmp_path, cert_pem, PEER + second, NATIONAL_ACCOUNT), env={})


@pytest.mark.parametrize(
    ("agencies", "key", "message"),
    [
        # via names no hub account
        (NATIONAL_ACCOUNT.replace('via = "truc.quocgia"', 'via = "nobody"'), "via", "not a hub"),
        # an agency reached through a peer has no credential here
        (
            NATIONAL_ACCOUNT.replace(
                'via = "truc.quocgia"', f'via = "truc.quocgia"\ncredential_sha256 = "{"a" * 64}"'
            ),
            "credential_file",
            "no credential here",
        ),
        # serves is for hub accounts
        (
            NATIONAL_ACCOUNT.replace('via = "truc.quocgia"', 'serves = ["*.*.*.G*"]'),
            "serves",
            "only a hub account",
        ),
        (NATIONAL_ACCOUNT.replace('serves = ["*.*.*.G*"]', 'serves = ["G*"]'), "serves", "four"),
    ],
)
def test_directory_mistakes_name_the_key(
    tmp_path: Path, cert_pem: bytes, agencies: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_project(tmp_path, cert_pem, agencies=agencies), env={})
    assert caught.value.key.endswith(f".{key}") and message in caught.value.problem


def test_a_via_agency_needs_its_peer_configured(tmp_path: Path, cert_pem: bytes) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_project(tmp_path, cert_pem, peer="", agencies=NATIONAL_ACCOUNT), env={})
    assert caught.value.key == "agency 000.00.00.G22.via"
    assert "no [[peer]] table" in caught.value.problem


# --- who a peer may speak for, and where codes go (pure, on a Directory) ---------------------

LOCAL = Agency("000.00.00.H26", "UBND", "agency")
GOV = Agency("000.00.00.G22", "VPCP", "agency", delivery="peer", via="truc.quocgia")
NATIONAL = Agency("truc.quocgia", "Trục", "hub", serves=("*.*.*.G*", "*.*.*.H49"))
NGHE_AN_HUB = Agency("lienthong.nghean", "Nghệ An", "hub", serves=("*.*.*.H41",))
NGHE_AN = Agency("000.00.00.H41", "UBND Nghệ An", "agency", delivery="peer", via=NGHE_AN_HUB.code)
AUDITOR = Agency("000.00.00.G99", "an account with a G code", "auditor")
DIRECTORY = Directory([LOCAL, GOV, NATIONAL, NGHE_AN_HUB, NGHE_AN, AUDITOR])


@pytest.mark.parametrize(
    ("hub", "code", "allowed"),
    [
        (NATIONAL, "000.00.00.G22", True),  # listed via it
        (NATIONAL, "000.00.00.G12", True),  # unlisted, matches its pattern
        (NATIONAL, "000.00.00.H49", True),
        (NATIONAL, "000.00.00.H26", False),  # a local agency: never, whatever the pattern
        (NATIONAL, "000.00.00.H41", False),  # listed via another peer
        (NATIONAL, "000.00.00.G99", False),  # an account, not an agency
        (NATIONAL, "000.00.00.H50", False),  # matches nothing
        (NGHE_AN_HUB, "000.00.00.H41", True),
        (NGHE_AN_HUB, "000.00.00.G22", False),
        (LOCAL, "000.00.00.H26", False),  # an agency is no hub
    ],
)
def test_who_a_peer_may_speak_for(hub: Agency, code: str, allowed: bool) -> None:
    assert DIRECTORY.speaks_for(hub, code) is allowed


def test_where_codes_go() -> None:
    wide = Agency("000.00.00.H26", "x", "agency")
    assert wide.is_local and not GOV.is_local and NATIONAL.is_hub
    routes = peer_routes(
        [PeerConfig("truc.quocgia", "https://t", "c", ("*.*.*.H26",), default=True)]
    )
    here = destination(DIRECTORY, routes, "000.00.00.H26")
    assert here is not None and here.peer is None  # local beats any pattern
    assert here.mode == "pull"  # the agency's own delivery mode
    via = destination(DIRECTORY, routes, "000.00.00.H41")
    assert via is not None and via.peer == "lienthong.nghean"  # listed via beats the default
    anywhere = destination(DIRECTORY, routes, "000.00.00.H01")
    assert anywhere is not None and anywhere.peer == "truc.quocgia" and anywhere.agency is None
    assert via.mode == anywhere.mode == "peer"
    assert destination(DIRECTORY, routes, "truc.quocgia") is None  # accounts receive nothing
    assert destination(DIRECTORY, (), "000.00.00.H01") is None
