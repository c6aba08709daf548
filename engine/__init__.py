"""cardflow engine: BPMN runtime, deployment and versioning, persistence, web console and CLI.

The engine core (definitions, runtime, persistence) knows nothing of cards; the service
handlers of ``tasks`` reach it only through the service registry, wired in ``engine.bootstrap``.
"""
