"""Spec-string registries for backends.

A spec is ``name`` or ``name:argument`` (``openai:gpt-4o-mini``, ``hf:Qwen/Qwen2.5-VL-7B-Instruct``,
``llamacpp:/models/x.gguf``). Each registry maps names to ``"module:attribute"`` strings that are
imported only when the backend is first used, so ``import pipelines`` never imports torch or an
SDK. Third parties add backends through the entry-point groups ``vidground.describers`` and
``vidground.reasoners`` (the entry point's name is the spec name) or by calling ``register``.

A target is a class or factory. It is called as ``target.from_spec(argument, **options)`` when it
has ``from_spec``, else ``target(argument, **options)`` (``target(**options)`` with no argument).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from importlib import metadata
from typing import Any

from .errors import ConfigurationError, MissingDependencyError, did_you_mean

log = logging.getLogger(__name__)

# the optional packages a built-in backend may import, by module: (the package to install, its extra in pyproject.toml)
EXTRAS: dict[str, tuple[str, str]] = {
    "openai": ("openai", "openai"), "httpx": ("httpx", "openai"), "simplejpeg": ("simplejpeg", "openai"),
    "transformers": ("transformers", "hf"), "accelerate": ("accelerate", "hf"), "PIL": ("pillow", "hf"),
    "gguf": ("gguf", "hf"), "llama_cpp": ("llama-cpp-python", "llamacpp"), "torch": ("torch", "embedding"),
    "sentence_transformers": ("sentence-transformers", "embedding"), "ray": ("ray", "ray"),
    "matplotlib": ("matplotlib", "eval"), "pycocoevalcap": ("pycocoevalcap", "captions"),
}


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; ``"cv"`` -> ``("cv", None)``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"a backend spec must be a non-empty string, got {spec!r}")
    name, sep, arg = spec.strip().partition(":")
    return name.strip().lower(), (arg.strip() or None) if sep else None


class Registry:
    def __init__(self, kind: str, group: str, builtins: dict[str, str], aliases: dict[str, str] | None = None):
        self.kind = kind
        self.group = group
        self._targets: dict[str, str | Callable[..., Any]] = dict(builtins)
        self._builtins = dict(builtins)
        self._aliases = dict(aliases or {})
        self._entry_points_loaded = False

    def register(self, name: str, target: str | Callable[..., Any]) -> None:
        """Add or replace a backend: ``target`` is a class/factory or a ``"module:attr"`` string."""
        self._targets[name.lower()] = target

    def builtin(self, spec: str) -> bool:
        """Whether ``spec`` names one of the project's own backends as shipped (not one installed as a plug-in,
        added or replaced by :meth:`register`): the ones whose ``settings()`` are known to carry everything that
        changes their output."""
        name, _ = split_spec(spec)
        name = self._aliases.get(name, name)
        where, target = self._builtins.get(name), self._targets.get(name)
        if where is None or target is None:
            return False
        return target == where or f"{getattr(target, '__module__', '')}:{getattr(target, '__qualname__', '')}" == where

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._targets)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.group):
            name = ep.name.lower()
            if name in self._builtins and self._builtins[name] != ep.value:  # a plug-in never replaces one
                dist = getattr(getattr(ep, "dist", None), "name", None)
                log.warning("the %s entry point %r (%s%s) is ignored: %r names one of vidground's own %s backends; "
                            "give the entry point another name", self.group, ep.name, ep.value,
                            f", of {dist}" if dist else "", name, self.kind)
                continue
            self._targets.setdefault(name, ep.value)

    def target(self, name: str, *, spec: str | None = None) -> Callable[..., Any]:
        self._load_entry_points()
        name = self._aliases.get(name, name)
        if name not in self._targets:
            choices = ", ".join(self.names())
            hint = self.suggest(spec or name)
            raise ConfigurationError(f"unknown {self.kind} backend {(spec or name).strip()!r}"
                                     + (f" (did you mean {hint!r}?)" if hint else "") + f"; choose one of: {choices}")
        target = self._targets[name]
        if isinstance(target, str):
            target = self._import(name, target)
            self._targets[name] = target
        return target

    def _import(self, name: str, where: str) -> Callable[..., Any]:
        """The class or factory ``where`` (``"module:attr"``) names; a module that is not installed, or an
        attribute it lacks, is a :class:`ConfigurationError` naming the backend (a
        :class:`MissingDependencyError` with the extra to install where the project has one)."""
        module_name, _, attr = where.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or str(exc)
            top = missing.partition(".")[0]
            if top in EXTRAS:
                package, extra = EXTRAS[top]
                raise MissingDependencyError(package, extra, f"the {self.kind} backend {name!r} ({module_name} "
                                             f"imports {missing!r}, which is not installed)") from None
            raise ConfigurationError(f"the {self.kind} backend {name!r} ({where}) cannot be imported: no module "
                                     f"named {missing!r}; install the package that provides it") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ConfigurationError(f"the {self.kind} backend {name!r} ({where}): module {module_name!r} has no "
                                     f"{attr!r}") from None

    def suggest(self, spec: str) -> str | None:
        """The spec a misspelt one most likely meant: ``openai/gpt-4o`` -> ``openai:gpt-4o`` (another
        separator after a backend name), ``opnai:gpt-4o`` -> ``openai:gpt-4o`` (a near spelling)."""
        spec = spec.strip()
        names = self.names() + list(self._aliases)
        for sep in ("/", "=", "::", " ", ";", "."):
            head, found, rest = spec.partition(sep)
            if found and rest and head.strip().lower() in names:
                return f"{head.strip().lower()}:{rest.strip()}"
        head, sep, rest = spec.partition(":")
        near = did_you_mean(head.strip(), names, lambda n: n.lower().replace("_", "-"))
        if near is None or near == head.strip().lower():
            return None
        return f"{near}{sep}{rest}"

    def check(self, spec: str, *, local: bool = True, **options: Any) -> Any:
        """The backend a spec names, with ``options`` checked against what it accepts, without building it
        (a :class:`ConfigurationError` for an unknown backend or option). Their *values* are checked too: by
        the target's ``check_options(argument, **options)`` classmethod where it has one (a backend that loads
        weights when built checks them there, loading nothing), else, for a class that sets ``lazy = True``
        (building one loads nothing and contacts no server), by building one and closing it. Only a hook the
        target defines itself counts (``vars(target)``): a subclass with its own ``__init__`` does not inherit
        its base's, which describe the base's arguments.

        ``local=False``: the backend is built elsewhere (the workers of a Ray run), so nothing is looked up here
        (an API key, a model file, an environment variable): ``check_options`` is called with ``local=False``
        where it takes it (and not at all where it does not), and a lazy one is not built."""
        name, arg = split_spec(spec)
        target = self.target(name, spec=spec)
        self._check_options(name, target, options)
        try:
            own = vars(target)
        except TypeError:  # a callable without a __dict__
            own = {}
        try:
            if "check_options" in own:
                check_options = target.check_options
                if local:
                    check_options(arg, **options)
                elif "local" in inspect.signature(check_options).parameters:
                    check_options(arg, local=False, **options)
            elif own.get("lazy", False) and local:
                built = self.create(spec, **options)
                close = getattr(built, "close", None)
                if callable(close):
                    close()
        except ConfigurationError as exc:  # which backend's option is wrong (a describer and a reasoner may share one)
            if type(exc) is not ConfigurationError:  # a MissingDependencyError... stays what it is
                raise
            raise ConfigurationError(f"{self.kind} {spec.strip()!r}: {exc}") from None
        return target

    def _check_options(self, name: str, target: Any, options: dict[str, Any]) -> None:
        accepted = _accepted(target)
        unknown = sorted(set(options) - accepted) if accepted is not None else []
        if unknown:
            valid = ", ".join(sorted(accepted - {"arg", "model", "spec"})) or "none"
            raise ConfigurationError(f"{self.kind} {name!r} has no option {', '.join(unknown)}; its options: {valid}")

    def create(self, spec: str, **options: Any) -> Any:
        name, arg = split_spec(spec)
        target = self.target(name, spec=spec)
        self._check_options(name, target, options)
        if hasattr(target, "from_spec"):
            return target.from_spec(arg, **options)
        return target(arg, **options) if arg is not None else target(**options)


def bound_options(target: Any, arg: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Every argument ``target(arg, **options)`` would pass to ``target.__init__``, its defaults filled in: what a
    ``check_options`` classmethod checks without building the backend."""
    bound = inspect.signature(target.__init__).bind(None, arg, **options)  # None: self
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "self"}


def _accepted(target: Any) -> set[str] | None:
    """Keyword options a backend accepts (from ``__init__`` and ``from_spec``); ``None`` when it takes ``**kwargs``."""
    names: set[str] = set()
    for fn, forwards in ((getattr(target, "__init__", None), False), (getattr(target, "from_spec", None), True)):
        if fn is None or fn is object.__init__:
            continue
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return None
        for p in params:
            if p.kind is p.VAR_KEYWORD and not forwards:  # from_spec(**options) forwards to __init__
                return None
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "cls"):
                names.add(p.name)
    return names
