"""The index a ``tickerwire eval --work-dir`` run kept, opened again for query-side benchmarks."""

from __future__ import annotations

from pathlib import Path

from tickerwire.core.settings import load_settings
from tickerwire.evaluation import Dataset, corpus_documents, load_dataset
from tickerwire.pipeline.entities import observations
from tickerwire.runtime import Resources, open_resources


async def open_kept_index(dataset: Path, data_dir: Path) -> tuple[Dataset, Resources]:
    """``dataset`` and the resources over the index in ``data_dir``, its registry taught.

    The eval's Kafka folder (and its entities topic) is gone: the names are learned again from
    the corpus rows, with the function the preprocess stage runs on every document. The caller
    closes the resources.
    """
    data = load_dataset(dataset)
    settings = load_settings().model_copy(update={"data_dir": data_dir})
    res = await open_resources(settings, with_index=True)
    assert res.index is not None
    for doc in corpus_documents(data.corpus, titles=False):
        for obs in observations(
            tickers=doc["tickers"], title=doc["title"], body=doc["body"], metadata=doc["metadata"]
        ):
            res.registry.observe(obs)
    return data, res
