"""The operator console: a Flask app factory, one blueprint per feature.

``create_app`` builds the product from settings (or takes services built by the caller, as the
tests and the CLI do), registers the card widgets forms may name, and resumes interrupted orders.
"""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from prometheus_client import CollectorRegistry

from engine import metrics
from engine.bootstrap import Services, build_services, published_widgets, resume_pending
from engine.config import Settings
from engine.db import shared_reads
from engine.host_link import HostLink, HostMetrics
from engine.web import admin, audit, auth, batch_orders, bpmn_assets, cards, health, pin_letters, pki, search
from engine.web.context import SERVICES_KEY, WIDGETS_KEY

log = logging.getLogger(__name__)
csrf = CSRFProtect()

# Nothing is loaded from elsewhere: the console works on a closed network and resists injection.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(settings: Settings | None = None, services: Services | None = None,
               host: HostLink | None = None) -> Flask:
    """Build the console; ``services`` (from ``engine.bootstrap.build_services``) wins over settings.

    The caller that passes ``services`` keeps them and closes them; otherwise the app owns them.
    ``host``: this is a page process of ``cardflow run --processes N``; the host process runs
    the work and resumes interrupted orders, and its /metrics is served here too.
    """
    if services is None:
        services = build_services(settings or Settings.from_env())
    settings = services.settings
    settings.ensure_instance()
    app = Flask(__name__, instance_path=str(settings.instance_path), instance_relative_config=True)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: a link to a card page from another tool still opens logged in. Every
        # change is a POST with a CSRF token, and Lax never sends the cookie on a foreign POST.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    app.extensions[SERVICES_KEY] = services
    app.extensions[WIDGETS_KEY] = published_widgets()
    csrf.init_app(app)
    auth.login_manager.init_app(app)
    for blueprint in (auth.bp, batch_orders.bp, cards.bp, search.bp, pin_letters.bp, admin.bp, audit.bp,
                      bpmn_assets.bp, health.bp):
        app.register_blueprint(blueprint)
    # Relying parties (openssl, door controllers) POST OCSP requests without a session or a token.
    app.register_blueprint(pki.bp)
    csrf.exempt(pki.bp)
    # /metrics: a registry of this app's own; the engine steps run here (in-process host) are timed.
    if host is None:
        registry, step_seconds = metrics.new_registry(lambda: health.metrics_snapshot(services))
        metrics.instrument_runtime(services.runtime, step_seconds)
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HostMetrics(host))
    app.extensions[health.METRICS_KEY] = registry
    _register_error_pages(app)
    _share_page_reads(app, services)
    app.after_request(_security_headers)
    # Orders interrupted by a stop go on; the runner never advances one instance twice at a time.
    if host is None:
        resume_pending(services)
    return app


def _share_page_reads(app: Flask, services: Services) -> None:
    """A page that only reads (GET, HEAD) reads in one transaction: the login check, the menus and
    its content join it (engine.db.shared_reads). Other methods keep a transaction per block."""

    @app.before_request
    def _begin_shared_reads():
        if request.method in ("GET", "HEAD"):
            scope = shared_reads(services.sessions)
            scope.__enter__()
            g.cardflow_shared_reads = scope

    @app.teardown_request
    def _end_shared_reads(_error):
        scope = g.pop("cardflow_shared_reads", None)
        if scope is not None:
            scope.__exit__(None, None, None)


def _security_headers(response):
    """Add the headers that keep pages from loading or being framed by anything foreign."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _register_error_pages(app: Flask) -> None:
    """Plain pages for the errors a user can meet; they never show a trace or a secret."""

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        message = ("The form was not accepted because its security token is missing or expired; nothing "
                   "was changed. Go back, reload the page and try again.")
        return render_template("error.html", title="Form not accepted", message=message), 400

    @app.errorhandler(403)
    def forbidden(error):
        message = "Your role does not give access to this page."
        return render_template("error.html", title="Not allowed", message=message), 403

    @app.errorhandler(404)
    def not_found(error):
        message = getattr(error, "description", None) or "There is no such page."
        return render_template("error.html", title="Not found", message=message), 404

    @app.errorhandler(500)
    def server_error(error):
        # Each unit of work already rolled back; the log has the trace, the page has none.
        log.error("request failed: %s", getattr(error, "original_exception", error))
        message = "Something went wrong on the server; the failing step saved nothing. Try again."
        return render_template("error.html", title="Server error", message=message), 500
