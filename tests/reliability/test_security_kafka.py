"""Kafka over SASL_SSL for real: a broker of this module's own whose only client listener takes
SASL (SCRAM-SHA-512 and PLAIN) over TLS, with a throwaway CA made here.

The pipeline runs end to end through it (produce -> worker -> index -> search, and the admin,
lag and DLQ clients), and a wrong password or an untrusted certificate fails at once with a
clear error instead of being retried for ever.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.support import TICKERWIRE, Worker, wait_until
from tests.kafka_support import free_port, private_broker
from tests.reliability.tls_support import TlsFiles, make_tls_files
from tests.secret_scan import register_secret
from tickerwire.adapters.kafka_admin import list_topics
from tickerwire.adapters.kafka_options import client_options
from tickerwire.core.errors import BrokerError, BrokerRejectedError
from tickerwire.core.settings import Settings
from tickerwire.localbroker import SaslSslListener
from tickerwire.produce import DocumentProducer

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

#: A fresh client that gives up on the first refused login; the bound says "fast, not a hang".
FAIL_FAST_S = 10.0
WORKER_FAIL_FAST_S = 45.0  # a worker process loads its embedding model before it connects


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    tls: TlsFiles
    user: str
    password: str

    def env(self, mechanism: str, password: str | None = None) -> dict[str, str]:
        """The settings of a process that connects as ``user`` with ``mechanism``."""
        return {
            "TICKERWIRE_KAFKA_BOOTSTRAP": self.bootstrap,
            "TICKERWIRE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TICKERWIRE_KAFKA_SASL_MECHANISM": mechanism,
            "TICKERWIRE_KAFKA_SASL_USERNAME": self.user,
            "TICKERWIRE_KAFKA_SASL_PASSWORD": password or self.password,
            "TICKERWIRE_KAFKA_SSL_CAFILE": str(self.tls.ca),
        }

    def settings(self, mechanism: str, password: str | None = None, **more: object) -> Settings:
        fields = {
            k.removeprefix("TICKERWIRE_").lower(): v
            for k, v in self.env(mechanism, password).items()
        }
        return Settings(**{**fields, **more})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    folder = tmp_path_factory.mktemp("kafka-sasl-ssl")
    tls = make_tls_files(folder / "tls")
    users = {name: register_secret(secrets.token_urlsafe(18)) for name in ("admin", "alice")}
    listener = SaslSslListener(keystore=tls.keystore, truststore=tls.ca, users=users, admin="admin")
    with private_broker(folder / "kafka", partitions=2, sasl_ssl=listener) as bootstrap:
        yield SecureKafka(bootstrap, tls, "alice", users["alice"])


def _run(args: list[str], env: dict[str, str], log: Path, timeout: float = 120) -> tuple[int, str]:
    """Run ``tickerwire ARGS``; its output goes to ``log`` (scanned for secrets) and back."""
    with log.open("w") as out:
        proc = subprocess.run(
            [TICKERWIRE, *args],
            env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    return proc.returncode, log.read_text()


def _docs(prefix: str) -> list[dict[str, object]]:
    return [
        {
            "schema": "raw-document/v1",
            "doc_id": f"news:{prefix}:{n}",
            "op": "upsert",
            "version": 1,
            "source": "security-test",
            "doc_type": "news",
            "title": f"Secure wire story {n}",
            "body": f"Quokka Mining (NYSE: QKM) reported record {word} output in quarter {n}.",
            "content_type": "text/plain",
            "published_at": "2026-11-02T13:30:00Z",
            "tickers": ["QKM"],
        }
        for n, word in enumerate(("lithium", "cobalt", "nickel"))
    ]


def test_the_pipeline_runs_end_to_end_through_sasl_ssl(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """Worker on SCRAM-SHA-512, producer and tools on PLAIN: produce -> index -> search."""
    worker = Worker(
        bootstrap=secure_kafka.bootstrap,
        data_dir=tmp_path / "worker",
        app_id=f"secure-{uuid.uuid4().hex[:8]}",
        http_port=free_port(),
        env=secure_kafka.env("SCRAM-SHA-512"),
    )
    try:
        worker.start()
        docs = _docs(uuid.uuid4().hex[:8])
        feed = tmp_path / "feed.jsonl"
        feed.write_text("".join(json.dumps(d) + "\n" for d in docs))
        code, out = _run(
            ["produce", str(feed)], secure_kafka.env("PLAIN"), tmp_path / "produce.log"
        )
        assert code == 0 and "produced 3, rejected 0" in out, out
        wait_until(
            lambda: all(worker.document_ids(str(d["doc_id"])) for d in docs),
            120,
            "the documents to be indexed through SASL_SSL",
        )
        hits = worker.search("cobalt output", mode="sparse")["hits"]
        assert hits and hits[0]["doc_id"] == docs[1]["doc_id"]
        # The lag reader of /v1/status reads committed offsets through the same listener.
        wait_until(
            lambda: all(
                v is not None for v in worker.client.get("/v1/status").json()["lag"].values()
            ),
            60,
            "the stage lag to be read through SASL_SSL",
        )
        code, out = _run(["topics", "create"], secure_kafka.env("PLAIN"), tmp_path / "topics.log")
        assert code == 0 and "tickerwire.docs.raw: already exists" in out, out
        code, out = _run(["dlq", "list", "--json"], secure_kafka.env("PLAIN"), tmp_path / "dlq.log")
        assert code == 0, out
        assert worker.stop() == 0
    finally:
        worker.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_a_wrong_password_fails_the_producer_fast_and_clearly(
    secure_kafka: SecureKafka, mechanism: str
) -> None:
    wrong = register_secret(secrets.token_urlsafe(12))
    started = time.monotonic()
    with pytest.raises(BrokerRejectedError, match="refused the login of user 'alice'") as info:
        async with DocumentProducer.from_settings(secure_kafka.settings(mechanism, wrong)):
            pass
    assert time.monotonic() - started < FAIL_FAST_S
    assert mechanism in info.value.reason and wrong not in info.value.reason


def test_a_wrong_password_fails_the_produce_command_and_the_worker_fast(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    wrong = register_secret(secrets.token_urlsafe(12))
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(_docs("wrong")[0]) + "\n")
    env = secure_kafka.env("SCRAM-SHA-512", wrong)
    code, out = _run(["produce", str(feed)], env, tmp_path / "produce.log", timeout=60)
    assert code == 1 and "refused the login of user 'alice'" in out, out

    started = time.monotonic()
    code, out = _run(
        ["up"],
        {
            **env,
            "TICKERWIRE_DATA_DIR": str(tmp_path / "worker"),
            "TICKERWIRE_HTTP_PORT": str(free_port()),
            "TICKERWIRE_APP_ID": "secure-wrong",
        },
        tmp_path / "worker.log",
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert code == 2 and "error: Kafka at" in out and "refused the login" in out, out
    assert elapsed < WORKER_FAIL_FAST_S, f"the worker took {elapsed:.1f}s to give up"


async def test_a_broker_certificate_from_another_ca_fails_fast_and_clearly(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    stranger = make_tls_files(tmp_path / "other-ca")
    settings = secure_kafka.settings("PLAIN", kafka_ssl_cafile=stranger.ca)
    started = time.monotonic()
    with pytest.raises(BrokerRejectedError, match="TLS handshake"):
        await list_topics(client_options(settings), timeout_s=FAIL_FAST_S)
    assert time.monotonic() - started < FAIL_FAST_S


async def test_the_listener_refuses_plain_text_clients(secure_kafka: SecureKafka) -> None:
    """Nothing reaches the topics without TLS and a login: no silent plain-text fallback."""
    with pytest.raises(BrokerError, match="cannot reach Kafka"):
        await list_topics(secure_kafka.bootstrap, timeout_s=5.0)
    assert "tickerwire.docs.raw" in await list_topics(
        client_options(secure_kafka.settings("PLAIN")), timeout_s=FAIL_FAST_S
    )
