"""The audit trail page: every entry, newest first, filtered by card, order, user, event and time.

Each filter is answered by an index of ``audit_events`` and pages go by time and id (keyset), so
a page costs the same with a thousand entries or millions; nothing counts the matching rows.
"""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit_export import AuditFilters, filtered_entries
from engine.db import read_only
from engine.store import AuditEvent, AuditHead
from engine.web.audit import auditor_only, bp
from engine.web.audit.keyset import KeysetPage, Position, keyset_page, position
from engine.web.audit.summaries import summary
from engine.web.audit.trail_form import TrailForm, event_type_groups, read_form
from engine.web.context import services
from tasks.queries import orders_of_instances

PAGE_SIZE = 50


def entries_page(session: Session, filters: AuditFilters, where: Position,
                 limit: int = PAGE_SIZE) -> KeysetPage:
    """The page of matching entries at ``where``, newest first, with its Newer and Older links."""
    rows = filtered_entries(session, filters, before_id=where.before, after_id=where.after, limit=limit + 1)
    return keyset_page(rows, where, limit)


def render_trail(form: TrailForm):
    """The trail page for ``form``: its entries, or its errors next to their fields (400)."""
    with read_only(services().sessions) as session:
        groups = event_type_groups(session, form.values["action"])
        # The chain's last signed head and its length (ids are numbered 1, 2, ... without gaps).
        head = session.scalar(select(AuditHead).order_by(AuditHead.id.desc()).limit(1))
        last_id = session.scalar(select(func.max(AuditEvent.id))) or 0
        page = (entries_page(session, form.filters, position(request.args)) if form.filters is not None
                else KeysetPage([], None, None))
        # Entries of an order's process before the order existed carry only the instance.
        instance_orders = orders_of_instances(session, sorted({entry.instance_id for entry in page.items
                                                               if entry.instance_id}))
    return render_template("audit/trail.html", form=form, groups=groups, head=head, last_id=last_id,
                           page=page, instance_orders=instance_orders,
                           summary=summary), 400 if form.errors else 200


@bp.route("/")
@auditor_only
def trail():
    """The audit trail, filtered by the query arguments."""
    return render_trail(read_form(request.args))
