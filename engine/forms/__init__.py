"""User-task forms: JSON Schema + UI hints rendered to HTML, posts validated back into typed data.

Nothing here knows of cards or Flask: widgets that need the database are registered by name
by the composition root.
"""
