"""The web console: the app factory is ``engine.web.app.create_app``; one blueprint per feature."""
