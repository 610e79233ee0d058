"""The backends' specs and options checked before any work: what a session does when it is made, and an eval
before its run."""

from __future__ import annotations

from typing import Any

from frame_describer import describers
from temporal_reasoner import DEFAULT_REASONER, reasoners
from vidground.errors import ConfigurationError


def check_backends(describer: Any, describer_options: dict[str, Any] | None, reasoner: Any,
                   reasoner_options: dict[str, Any] | None, *, local: bool = True) -> None:
    """The backends named by spec strings (the describer when it is one; the reasoner when it is one, or the default
    reasoner when given options; and the reasoner's ``fallback`` spec when it has one) with their options, names and
    values checked without loading a model or contacting a server (:meth:`vidground.registry.Registry.check`): a
    :class:`ConfigurationError` at once. A :class:`~pipelines.session.Session` checks its backends when it is made, before a paid
    describer describes a frame or a reasoner loads its model; an eval before its run, where the run would record it
    as every query's failure. A backend given as an instance (from Python) is the caller's, built already; the
    default reasoner without options has nothing to check. ``local=False``: the backends are built on other machines
    (a Ray run's workers, with their environment and disks), so only the values are checked here, no API key, model
    file or environment variable looked up."""
    reasoner_options = dict(reasoner_options or {})
    if isinstance(describer, str):
        describers.check(describer, local=local, **(describer_options or {}))
    if isinstance(reasoner, str) or (reasoner is None and reasoner_options):
        reasoners.check(reasoner or DEFAULT_REASONER, local=local, **reasoner_options)
    fallback = reasoner_options.get("fallback")
    if isinstance(fallback, str):  # a spec, built by the reasoner only when a reply fails
        try:
            reasoners.check(fallback, local=local)
        except ConfigurationError as exc:
            if "no API key" in str(exc):  # --reasoner-opt api_key= is the main reasoner's, not the fallback's
                raise ConfigurationError(f"fallback={fallback!r}: no API key: set OPENAI_API_KEY (a fallback spec "
                                         "takes no options)") from None
            raise ConfigurationError(f"fallback={fallback!r}: {exc}") from None


__all__ = ["check_backends"]
