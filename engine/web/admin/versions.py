"""Processes, forms and option scripts: their versions, sources, diffs, validate, deploy, roll back."""

from __future__ import annotations

from flask import render_template

from engine.web.admin import admin_only, bp


@bp.route("/")
@admin_only
def index():
    """Every deployed process, form and option set with its versions."""
    return render_template("admin/versions.html")
