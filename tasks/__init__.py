"""cardflow tasks: the card domain, the service-task handlers and the Card SDK.

Nothing here imports Flask or SpiffWorkflow: handlers take plain parameters and return plain
dicts, so any runtime (the engine's, a task-queue worker, a test) can call them.
"""
