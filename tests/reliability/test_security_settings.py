"""Kafka security settings: combinations checked with clear errors, one place that turns them
into client options (aiokafka and faust alike), and secrets kept out of errors and reports."""

from __future__ import annotations

import ssl
from collections.abc import Generator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pydantic
import pytest

from tests import conftest, secret_scan
from tests.reliability.tls_support import make_tls_files
from tickerwire.adapters.kafka_options import client_options, describe, faust_credentials
from tickerwire.core.errors import ConfigError
from tickerwire.core.settings import Settings, load_settings
from tickerwire.localbroker import BrokerConfig, SaslSslListener

PASSWORD = secret_scan.register_secret("kafka-pw-never-shown-7c1d")


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tls_files(tmp_path_factory.mktemp("tls")).ca


def sasl(**more: Any) -> Settings:
    fields: dict[str, Any] = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "alice",
        "kafka_sasl_password": PASSWORD,
        **more,
    }
    return Settings(**fields)


def test_plaintext_is_the_default_and_needs_nothing() -> None:
    assert client_options(Settings(kafka_bootstrap="127.0.0.1:1")) == {
        "bootstrap_servers": "127.0.0.1:1",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(Settings()) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kafka_sasl_mechanism": None}, "SASL_SSL needs TICKERWIRE_KAFKA_SASL_MECHANISM"),
        ({"kafka_sasl_username": ""}, "needs TICKERWIRE_KAFKA_SASL_USERNAME"),
        ({"kafka_sasl_password": None}, "needs TICKERWIRE_KAFKA_SASL_PASSWORD"),
        ({"kafka_security_protocol": "SSL"}, "SSL does not use SASL"),
        ({"kafka_security_protocol": "PLAINTEXT"}, "PLAINTEXT does not use SASL"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({"kafka_ssl_cafile": Path("/nonexistent/ca.pem")}, "is not a readable file"),
        ({"kafka_ssl_certfile": Path(__file__)}, "_CERTFILE and TICKERWIRE_KAFKA_SSL_KEYFILE go"),
    ],
)
def test_bad_combinations_are_refused_naming_the_setting_never_the_password(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=message) as info:
        sasl(**fields)
    assert PASSWORD[-10:] not in str(info.value)


def test_a_settings_error_from_the_environment_never_echoes_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKERWIRE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TICKERWIRE_KAFKA_SASL_PASSWORD", PASSWORD)
    with pytest.raises(
        pydantic.ValidationError, match="needs TICKERWIRE_KAFKA_SASL_MECHANISM"
    ) as info:
        load_settings()
    # pydantic shortens a long input in the middle: look for the end of the password too.
    assert PASSWORD[-10:] not in str(info.value)


def test_tls_files_without_tls_are_refused(ca_file: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="does not use TLS"):
        Settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="a",
            kafka_sasl_password="b",
            kafka_ssl_cafile=ca_file,
        )


def test_sasl_ssl_options_carry_the_login_and_a_verifying_tls_context(ca_file: Path) -> None:
    settings = sasl(kafka_ssl_cafile=ca_file, kafka_bootstrap="broker.example:9093")
    options = client_options(settings)
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "bootstrap_servers": "broker.example:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert not client_options(sasl(kafka_ssl_check_hostname=False))["ssl_context"].check_hostname
    assert describe(options) == "broker.example:9093"  # what messages show: no credentials
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


def test_sasl_plaintext_has_no_tls_context() -> None:
    options = client_options(sasl(kafka_security_protocol="SASL_PLAINTEXT"))
    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options


def test_the_faust_app_gets_the_same_login(ca_file: Path) -> None:
    creds = faust_credentials(sasl(kafka_ssl_cafile=ca_file, kafka_sasl_mechanism="PLAIN"))
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol.value == "SASL_SSL" and creds.mechanism.value == "PLAIN"
    assert (creds.username, creds.password) == ("alice", PASSWORD)
    assert PASSWORD not in repr(creds)
    tls_only = faust_credentials(Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file))
    assert isinstance(tls_only, faust.SSLCredentials)


def test_the_local_broker_renders_a_sasl_ssl_listener(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    listener = SaslSslListener(
        keystore=tls.keystore, truststore=tls.ca, users={"admin": "a-pass-123"}, admin="admin"
    )
    config = BrokerConfig(20000, tmp_path, tmp_path / "libs", sasl_ssl=listener)
    config.render_config()
    text = config.config_path.read_text()
    assert "listeners=SASL_SSL://127.0.0.1:20000,CONTROLLER://127.0.0.1:20001" in text
    assert "inter.broker.listener.name=SASL_SSL" in text and "ssl.keystore.type=PEM" in text
    assert config.config_path.stat().st_mode & 0o077 == 0  # it holds the passwords
    assert listener.format_arguments() == [
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=a-pass-123]",
    ]
    assert "a-pass-123" not in repr(listener)
    with pytest.raises(ConfigError, match="must match"):
        SaslSslListener(
            keystore=tls.keystore, truststore=tls.ca, users={"admin": "a b"}, admin="admin"
        )
    with pytest.raises(ConfigError, match="not among the users"):
        SaslSslListener(
            keystore=tls.keystore, truststore=tls.ca, users={"x": "y" * 8}, admin="admin"
        )


# --- the secret scan itself ---------------------------------------------------------------


def test_the_scan_finds_registered_secrets_in_text_and_log_files(tmp_path: Path) -> None:
    assert secret_scan.leaked([f"login with {PASSWORD} ok"]) == [secret_scan.mask(PASSWORD)]
    assert secret_scan.leaked(["nothing here"]) == []
    assert secret_scan.register_secret("short") == "short"
    assert "short" not in secret_scan.registered()  # too short to scan for
    # Not registered: this folder is scanned again at the end of the session.
    unregistered = "log-file-secret-9f2e"
    (tmp_path / "worker-1.log").write_text(f"password={unregistered}\n")
    (tmp_path / "server.properties").write_text(f"password={unregistered}\n")  # not a log
    found = secret_scan.leaked_in_files(tmp_path, [unregistered])
    assert list(found) == [tmp_path / "worker-1.log"]
    assert unregistered not in str(found)  # the failure report masks what it found


def test_the_environment_s_secrets_are_registered() -> None:
    secret_scan.register_environment({"TICKERWIRE_API_KEYS": "first-key-123, second-key-456"})
    assert {"first-key-123", "second-key-456"} <= secret_scan.registered()


def _report(sections: list[tuple[str, str]]) -> Any:
    return SimpleNamespace(sections=sections, outcome="passed", longrepr=None, when="call")


def _hook(report: Any) -> Any:
    item = SimpleNamespace(nodeid="tests/x.py::test_x")
    hook: Generator[None, Any, None] = conftest.pytest_runtest_makereport(item, None)  # type: ignore[arg-type]
    next(hook)
    with pytest.raises(StopIteration):
        hook.send(SimpleNamespace(get_result=lambda: report))
    return report


def test_a_test_whose_captured_output_holds_a_secret_fails() -> None:
    leaky = _hook(_report([("Captured log call", f"INFO connecting password={PASSWORD}")]))
    assert leaky.outcome == "failed" and "tests/x.py::test_x" in leaky.longrepr
    assert PASSWORD not in leaky.longrepr
    clean = _hook(_report([("Captured stdout call", "all fine")]))
    assert clean.outcome == "passed"
