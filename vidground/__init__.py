"""vidground's core: the data model, the error tree, the registry, pricing, the chat-client
plumbing (one retry layer, one rate limiter per endpoint and key) and the cache of loaded models.

Both stages (``frame_describer``, ``temporal_reasoner``) and ``pipelines`` stand on this package;
it imports none of them, nor ``prompts``.
"""
