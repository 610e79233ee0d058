"""vidground's core: the data model, the error tree, the registry, pricing, the chat-client
plumbing (one retry layer, one rate limiter per endpoint and key) and the cache of loaded models.

Both stages (``frame_describer``, ``temporal_reasoner``) and ``pipelines`` stand on this package;
it imports none of them, nor ``prompts``.
"""

#: The loggers vidground writes to, one per top-level package (each module logs under its package's name). vidground
#: adds no handler to them: with no logging configured, Python prints their warnings on stderr. To quiet or route
#: them all: ``for name in vidground.LOGGERS: logging.getLogger(name).setLevel(logging.ERROR)``.
LOGGERS = ("vidground", "frame_describer", "temporal_reasoner", "pipelines", "prompts")
