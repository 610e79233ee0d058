"""Describe frames with a local Hugging Face vision-language model (``hf:<model id or path>``).

Any image-text-to-text model that ``transformers`` loads with ``AutoProcessor`` and
``AutoModelForImageTextToText`` and that has a chat template works: LLaVA 1.5 / NeXT,
Qwen2-VL / Qwen2.5-VL, SmolVLM, Idefics3, InternVL... Frames go through the model in batches
(left padding, greedy decoding by default). Models are loaded once per process and shared by
every describer built with the same model, device and dtype (see :func:`load_vlm`).

Offline use: a local folder works as is; a hub id is looked up in the local cache first and
only downloaded when ``HF_HUB_OFFLINE`` is not set. A missing model raises
:class:`ConfigurationError` saying which model, where it looked, and how to fetch it.

``torch`` and ``transformers`` are imported when a describer is built, never at package import.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import prompts

from .base import PROMPT_MODES, BaseDescriber, DescriptionStream, PromptMode, StreamState
from vidground.options import flag
from vidground.errors import ConfigurationError, InputError, ProviderError
from vidground.models import (chat_template_text, check_model_options, load_error, local_model, locate_model,
                              model_lock, require_transformers, resolve_device, resolve_dtype, shared_model, TEMPLATE_PROBE)
from vidground.types import Frame, FrameDescription, Usage

def _no_video_needed(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("torchvision", "video_processor", "video processor", "videoprocessor",
                                   "_extra_content"))


def image_only_processor_class(processor_cls: type[Any]) -> type[Any]:
    """A subclass of a multimodal processor class without its video sub-processor.

    ``transformers`` 5 builds video processors on torchvision; this lets image-only use
    (all a frame describer needs) work with pillow alone. The subclass keeps the name of the
    original, so what it saves loads back as the original class.
    """
    attributes = [a for a in processor_cls.get_attributes() if "video" not in a]

    def get_attributes(cls: type) -> list[str]:
        return list(attributes)

    return type(processor_cls.__name__, (processor_cls,), {"get_attributes": classmethod(get_attributes),
                                                          "__module__": processor_cls.__module__})


def _load_processor(transformers: Any, source: str, kwargs: dict[str, Any]) -> Any:
    try:
        return transformers.AutoProcessor.from_pretrained(source, **kwargs)
    except (ImportError, AttributeError, ValueError, TypeError, OSError) as exc:
        if not _no_video_needed(exc):
            raise
    # The processor's video half needs torchvision: load it image-only.
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES, processor_class_from_name

    name = None
    try:
        processor_dict, _ = transformers.ProcessorMixin.get_processor_dict(source, **kwargs)
        name = processor_dict.get("processor_class")
    except (OSError, ValueError):
        pass
    if not name:
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        name = PROCESSOR_MAPPING_NAMES.get(config.model_type)
    cls = processor_class_from_name(name) if name else None
    if cls is None:
        raise ConfigurationError(f"cannot find a processor class for {source!r} (model type without a processor?)")
    return image_only_processor_class(cls).from_pretrained(source, **kwargs)


def local_weights(model: str) -> dict[str, str] | None:
    """What identifies the weights of a local model file or folder, ``None`` for a hub id: the resolved path and a
    digest of the name, size and modification time of each file at the folder's top level (weights, config,
    tokenizer, chat template: what ``save_pretrained`` writes; a trainer's ``checkpoint-N`` subfolders are not read).
    A checkpoint saved again in the same folder gets another digest, so its descriptions are cached apart."""
    path = local_model(model, what="describer")
    if path is None:
        return None
    path = path.resolve()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    digest = hashlib.sha256()
    for f in files:
        try:
            st = f.stat()
        except FileNotFoundError:  # removed since the listing (a checkpoint being saved): not part of the weights
            continue
        digest.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"path": str(path), "files": digest.hexdigest()[:16]}


def hub_commit(model: str, loaded: Any, *, revision: str | None, cache_dir: str | None) -> str | None:
    """The commit a hub model's weights were loaded from: the one ``transformers`` records in the model's config,
    else the snapshot the local Hugging Face cache resolves ``revision`` to; ``None`` when neither says."""
    commit = getattr(getattr(loaded, "config", None), "_commit_hash", None)
    if isinstance(commit, str) and commit:
        return commit
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "config.json", cache_dir=cache_dir, revision=revision)
    except Exception:  # noqa: BLE001 - an id the hub library refuses: nothing to say about it
        return None
    return Path(found).parent.name if isinstance(found, str) else None


def load_vlm(model: str, *, device: str | None = None, dtype: str | Any | None = None, revision: str | None = None,
             cache_dir: str | None = None, trust_remote_code: bool = False,
             processor_kwargs: dict[str, Any] | None = None,
             weights: dict[str, str] | None = None) -> tuple[Any, Any, str]:
    """Load (once per process) an image-text-to-text model and its processor.

    Returns ``(model, processor, device)``. Later calls with the same arguments return the
    same objects, so many describers, videos and queries share one copy of the weights; a local folder's
    ``weights`` (:func:`local_weights`, computed here when not given) are part of that key, so a checkpoint
    saved again in the same folder is loaded again.
    """
    torch, transformers = require_transformers("the hf describer")
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if weights is None:
        weights = local_weights(model)
    key = ("hf-vlm", model, device, str(torch_dtype), revision, cache_dir, trust_remote_code,
           json.dumps(processor_kwargs or {}, sort_keys=True, default=repr), tuple(sorted((weights or {}).items())))

    def load() -> tuple[Any, Any]:
        source, local_only = locate_model(model, what="describer", cache_dir=cache_dir)
        common = dict(revision=revision, cache_dir=cache_dir, trust_remote_code=trust_remote_code,
                      local_files_only=local_only)
        try:
            processor = _load_processor(transformers, source, {**common, **(processor_kwargs or {})})
            placement = {"device_map": device} if device != "cpu" else {}
            loaded = transformers.AutoModelForImageTextToText.from_pretrained(
                source, dtype=torch_dtype, **placement, **common)
        except OSError as exc:
            raise load_error(model, source, local_only, what="describer", cache_dir=cache_dir, exc=exc) from None
        except ValueError as exc:
            if "Unrecognized configuration class" in str(exc) or "image-text-to-text" in str(exc).lower():
                raise ConfigurationError(
                    f"describer model {model!r} is not an image-text-to-text model that AutoModelForImageTextToText "
                    f"can load; use a vision-language chat model (LLaVA, Qwen2-VL, SmolVLM, Idefics3...)") from None
            raise
        loaded.eval()
        if device == "cpu":
            loaded.to(device)
        return loaded, processor

    loaded, processor = shared_model(key, load)
    return loaded, processor, device


def _check_temperature(value: Any, do_sample: Any) -> None:
    """A sampling temperature is ``None`` (the model's generation config) or a finite number >= 0, above 0 when
    ``do_sample`` is on (transformers refuses 0 there: greedy decoding is ``do_sample=False``); checked before the
    model loads, not found by ``generate`` after it (a negative or NaN temperature, or a string from a Python
    caller, failed there as an internal error)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"temperature must be a finite number >= 0 (used with do_sample=True) or None (the "
                                 f"model's generation config), got {value!r}")
    if do_sample and value == 0:
        raise ConfigurationError("temperature must be above 0 with do_sample=True (transformers refuses 0); for "
                                 "greedy decoding leave do_sample off")


class TransformersDescriber(BaseDescriber):
    """Frame descriptions from a local vision-language chat model, batched and greedy by default.

    ``model`` is a hub id or a local folder. ``device``/``dtype`` default to CUDA with
    bf16 (fp16 where bf16 is unsupported), else CPU with fp32. ``batch_size`` frames go
    through ``generate`` together (left padding). ``generation`` holds extra ``generate``
    keyword arguments. ``chat_template`` overrides the processor's template.
    ``hf_model``/``hf_processor`` inject objects already loaded (no loading, no cache).

    ``settings()`` (the description cache's key) carry what changes a description: the model's weights (a hub
    model's commit, a local folder's path and its files' sizes and times: :func:`local_weights`), ``revision``,
    the chat template, ``processor_kwargs`` and the generation options. An injected ``hf_model`` cannot be told
    from the same object trained further, so it is never cached in the default cache (:meth:`cache_by_default`).
    """

    name = "hf"

    def __init__(self, model: str, *, mode: PromptMode = "agnostic", device: str | None = None,
                 dtype: str | Any | None = None, batch_size: int = 4, max_new_tokens: int = 128,
                 do_sample: bool = False, temperature: float | None = None, prompt_version: int | None = None,
                 revision: str | None = None, cache_dir: str | None = None, trust_remote_code: bool = False,
                 chat_template: str | None = None, processor_kwargs: dict[str, Any] | None = None,
                 generation: dict[str, Any] | None = None, hf_model: Any = None, hf_processor: Any = None):
        self.prompt = self._check_values(mode=mode, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                         do_sample=do_sample, temperature=temperature, prompt_version=prompt_version,
                                         hf_model=hf_model, hf_processor=hf_processor, generation=generation,
                                         processor_kwargs=processor_kwargs, chat_template=chat_template,
                                         device=device, dtype=dtype)
        self.model_name = str(model)
        self.mode = mode
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.do_sample = bool(do_sample)  # true/false or JSON 0/1 (checked in _check_values)
        # a whole number (--describer-opt temperature=1, parsed as int) is the float the cache key hashes and the one
        # transformers' sampling takes (it refuses an int)
        self.temperature = None if temperature is None else float(temperature)
        self.generation = dict(generation or {})
        self.revision = revision
        self.processor_kwargs = dict(processor_kwargs or {})
        self.injected = hf_model is not None
        if hf_model is not None:
            require_transformers("the hf describer")
            self.model, self.processor = hf_model, hf_processor
            self.device = str(next(hf_model.parameters()).device)
            self.weights: dict[str, Any] = {"injected": f"{type(hf_model).__module__}.{type(hf_model).__qualname__}"}
        else:
            local = local_weights(self.model_name)
            self.model, self.processor, self.device = load_vlm(
                self.model_name, device=device, dtype=dtype, revision=revision, cache_dir=cache_dir,
                trust_remote_code=trust_remote_code, processor_kwargs=processor_kwargs, weights=local)
            self.weights = local or {"commit": hub_commit(self.model_name, self.model, revision=revision,
                                                          cache_dir=cache_dir)}
        self.dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        self.chat_template = chat_template_text(chat_template, messages=_TEMPLATE_PROBE) \
            or getattr(self.processor, "chat_template", None)
        if not self.chat_template:
            raise ConfigurationError(
                f"describer model {self.model_name!r} has no chat template; pass chat_template='...' (a Jinja "
                f"template taking messages whose content holds {{'type': 'image'}} and {{'type': 'text'}} parts)")
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"  # batched generation continues every row from its end
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # one generate() at a time on a model, whichever describer runs it (load_vlm shares one copy)
        self._lock = model_lock(self.model)

    @staticmethod
    def _check_values(*, mode: Any, batch_size: Any, max_new_tokens: Any, prompt_version: Any, hf_model: Any,
                      hf_processor: Any, do_sample: Any = False, temperature: Any = None, generation: Any = None,
                      processor_kwargs: Any = None, chat_template: Any = None, device: Any = None, dtype: Any = None,
                      **_: Any) -> Any:
        """The option values checked before the model loads; the prompt they choose. ``device`` and ``dtype`` are
        resolved as loading would (torch imported, no model loaded: ``device=cuda`` without CUDA, ``dtype=int8``
        fail here, before an eval's run), unless the model is given loaded (``hf_model``: its own are used)."""
        if mode not in PROMPT_MODES:
            raise ConfigurationError(f"unknown describer mode {mode!r}; choose one of: {', '.join(PROMPT_MODES)}")
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        flag("do_sample", do_sample)  # do_sample=False from the command line is the text 'False': true to bool()
        _check_temperature(temperature, do_sample)
        if (hf_model is None) != (hf_processor is None):
            raise ConfigurationError("pass both hf_model and hf_processor, or neither")
        for name, value in (("generation", generation), ("processor_kwargs", processor_kwargs)):
            if value is not None and not (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
                raise ConfigurationError(f"{name} must be a mapping of keyword arguments (a dict; on the command line "
                                         f"JSON, e.g. {name}='{{\"num_beams\": 2}}'), got {value!r}")
        chat_template_text(chat_template, messages=_TEMPLATE_PROBE)
        if hf_model is None:
            try:
                resolve_dtype(dtype, resolve_device(device))
            except ConfigurationError as exc:
                raise ConfigurationError(f"the hf describer: {exc}") from None
        return prompts.load(f"describe_{mode}", prompt_version)

    @classmethod
    def check_options(cls, arg: str | None, *, local: bool = True, **options: Any) -> None:
        """The spec's argument and the option values checked without loading the model (what an eval does before
        its run, and a session when it is made: :func:`vidground.models.check_model_options`); a local folder is
        looked for (it exists and holds config.json), a hub id is not looked up."""
        check_model_options(cls, arg, options, local=local, check=cls._check_values, given="hf_model",
                            locate=lambda model: local_model(model, what="describer"))

    @staticmethod
    def _need_model(arg: str | None) -> None:
        if not arg:
            raise ConfigurationError("the hf describer needs a model: hf:<hub id or local path>, "
                                     "e.g. hf:llava-hf/llava-1.5-7b-hf or hf:./my-model")

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> "TransformersDescriber":
        cls._need_model(arg)
        return cls(arg, **options)

    @classmethod
    def cache_by_default(cls, options: dict[str, Any]) -> bool:
        """Whether a session may keep these descriptions in the default cache (:func:`pipelines.session.implied_cache`):
        not when the model is given loaded (``hf_model``), which ``settings()`` cannot tell from the same object
        trained further; a cache the user names still keeps them."""
        return options.get("hf_model") is None

    def settings(self) -> dict[str, Any]:
        template = hashlib.sha256(str(self.chat_template).encode()).hexdigest()[:16]
        return {"name": self.name, "model": self.model_name, "mode": self.mode, "prompt": self.prompt.name,
                "prompt_version": self.prompt.version, "prompt_hash": self.prompt.hash, "dtype": self.dtype,
                "max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                "temperature": self.temperature, **({"generation": self.generation} if self.generation else {}),
                "weights": self.weights, "chat_template": template,
                **({"revision": self.revision} if self.revision else {}),
                **({"processor_kwargs": self.processor_kwargs} if self.processor_kwargs else {})}

    def _prompt_text(self, query: str | None) -> str:
        if self.mode == "aware":
            if not query or not str(query).strip():
                raise InputError("the 'aware' describer mode needs the query; pass query=... or use mode='agnostic'")
            return self.prompt.render(query=" ".join(str(query).split()))
        return self.prompt.render()

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        """The frames' descriptions in frame order, ``batch_size`` frames per ``generate``. Stopped early (a Ctrl-C,
        or its reader closing it) while a batch's descriptions are handed over, it keeps the rest of the batch in
        the stream's ``unread`` (:class:`~frame_describer.base.DescriptionStream`), which a description cache in
        front stores, so a rerun does not describe them again."""
        return DescriptionStream(lambda out: self._stream(frames, query, out))

    def _stream(self, frames: Iterable[Frame], query: str | None,
                out: StreamState) -> Generator[FrameDescription, None, None]:
        text = self._prompt_text(query)
        batch: list[Frame] = []
        done: list[FrameDescription] = []  # the batch's descriptions not handed over yet
        try:
            for frame in frames:
                batch.append(frame)
                if len(batch) == self.batch_size:
                    self._describe_batch(batch, text, into=done)
                    batch = []
                    while done:
                        out.handed = done[0]
                        yield done.pop(0)
            if batch:
                self._describe_batch(batch, text, into=done)
                while done:
                    out.handed = done[0]
                    yield done.pop(0)
        finally:
            out.unread.extend(done)

    def _describe_batch(self, frames: list[Frame], text: str, *, into: list[FrameDescription] | None = None
                        ) -> list[FrameDescription]:
        """One ``generate`` for ``frames``: their descriptions, appended to ``into`` when given (as they are made,
        so none is lost between the batch's end and its caller's next step)."""
        import torch
        from PIL import Image

        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = self.processor.apply_chat_template(messages, chat_template=self.chat_template,
                                                    add_generation_prompt=True, tokenize=False)
        images = [[Image.fromarray(f.image)] for f in frames]
        with self._lock:  # a fast tokenizer shared by threads that set its padding at once: "Already borrowed"
            inputs = self.processor(text=[prompt] * len(frames), images=images, return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device)
        floating = {k: v.to(self.model.dtype) for k, v in inputs.items() if torch.is_floating_point(v)}
        inputs.update(floating)
        tokenizer = self.processor.tokenizer
        gen: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                               "pad_token_id": tokenizer.pad_token_id, **self.generation}
        if self.do_sample and self.temperature is not None:
            gen["temperature"] = self.temperature
        try:
            with self._lock, torch.inference_mode():
                out = self.model.generate(**inputs, **gen)
        except torch.cuda.OutOfMemoryError as exc:
            raise ProviderError(f"out of GPU memory describing {len(frames)} frames with {self.model_name!r}; "
                                f"lower batch_size (now {self.batch_size}) or use a smaller dtype/model",
                                provider="hf") from exc
        prompt_len = inputs["input_ids"].shape[1]
        new = out[:, prompt_len:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        image_id = getattr(self.processor, "image_token_id", None)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        results = [] if into is None else into
        for i, frame in enumerate(frames):
            prompt_tokens = int(inputs["attention_mask"][i].sum())
            image_tokens = int((inputs["input_ids"][i] == image_id).sum()) if image_id is not None else 0
            results.append(FrameDescription(  # run in this process: $0, not an unknown price (as replay's)
                t=frame.t, text=texts[i],
                usage=Usage(requests=1, prompt_tokens=prompt_tokens, image_tokens=image_tokens, cost_usd=0.0,
                            completion_tokens=_generated_length(new[i].tolist(), eos_ids, tokenizer.pad_token_id))))
        return results


#: The message a describer's ``chat_template`` is checked with (:func:`vidground.models.chat_template_text`).
_TEMPLATE_PROBE = [{"role": "user", "content": [{"type": "image"},
                                                {"type": "text", "text": TEMPLATE_PROBE}]}]


def _generated_length(ids: list[int], eos_ids: set[int], pad_id: int | None) -> int:
    """Tokens generated for one row: up to and including its first end-of-sequence token."""
    for n, tok in enumerate(ids):
        if tok in eos_ids:
            return n + 1
    while ids and pad_id is not None and ids[-1] == pad_id:
        ids = ids[:-1]
    return len(ids)


__all__ = ["TransformersDescriber", "load_vlm", "image_only_processor_class"]
