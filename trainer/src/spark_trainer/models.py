"""Loading local model folders: a transformers folder, or a folder holding one `.gguf` file."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)


def pick_device(device: str | None = None) -> torch.device:
    """`device` as given, else cuda when present, else cpu."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def require_device(device: str | None) -> torch.device:
    """The device a server runs on, checked at start: `cuda` must be a working GPU (a CUDA that
    does not load must not mean hours of training on the CPU), `cpu` is the CPU, None picks."""
    if device is None:
        return pick_device(None)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device: cpu or cuda, got {device!r}")
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            "--device cuda: no working CUDA GPU here (torch.cuda.is_available() is false: "
            f"torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "check the driver and CUDA_VISIBLE_DEVICES, or pass --device cpu"
        )
    try:
        torch.ones(1, device="cuda").add_(1).item()
    except Exception as err:  # a driver that loads but cannot run a kernel
        raise ValueError(f"--device cuda: the GPU does not run a kernel: {err}") from err
    return torch.device("cuda")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPU (what trainers use there), fp32 on CPU (bf16 matmuls are slow and lossy there)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def gguf_file(directory: Path) -> Path | None:
    """The folder's `.gguf` file when it has no transformers config of its own."""
    if (directory / "config.json").is_file():
        return None
    found = sorted(directory.glob("*.gguf"))
    return found[0] if found else None


def load_tokenizer(directory: Path | str) -> PreTrainedTokenizerBase:
    """The folder's tokenizer, always a fast one (offsets are needed).

    A folder with `tokenizer.json` loads through `PreTrainedTokenizerFast` directly: with
    `model_type=qwen2`, `AutoTokenizer` may pick `Qwen2Tokenizer`, which rebuilds the
    pre-tokenizer from its own defaults and so silently changes the ids of a locally trained one.
    """
    path = Path(directory)
    gguf = gguf_file(path)
    if gguf is not None:
        return AutoTokenizer.from_pretrained(path, gguf_file=gguf.name)
    if (path / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path, use_fast=True)


def load_model(
    directory: Path | str, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> PreTrainedModel:
    """A causal LM from a local folder on `device` (bf16 on cuda, fp32 on cpu unless `dtype`).

    A GGUF folder loads dequantized (transformers has no training path for quantized GGUF).
    """
    path = Path(directory)
    dev = pick_device(str(device) if device is not None else None)
    dt = dtype or default_dtype(dev)
    gguf = gguf_file(path)
    extra = {"gguf_file": gguf.name} if gguf is not None else {}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dt, **extra)
    if gguf is not None:
        # A GGUF-loaded model carries a quantizer marker that blocks save_pretrained; its weights
        # are plain tensors by now.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model.to(dev)


def meta_model(directory: Path | str, dtype: torch.dtype) -> PreTrainedModel:
    """The folder's model architecture on the meta device: shapes and dtypes, no memory. Its
    weights come later (`distributed.rank0_into_shards`)."""
    config = AutoConfig.from_pretrained(directory)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model
