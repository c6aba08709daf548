"""Custody keeps card secrets encrypted and gives back exactly what it was given."""

from __future__ import annotations

import base64
import stat

import pytest
from sqlalchemy import select

from tasks.cardsdk.custody import KEY_FILE, Custody, key_from_config, load_or_create_key
from tasks.cardsdk.piv.errors import CustodyError
from tasks.cardsdk.records import CustodySecret


def test_key_file_is_private_and_stable(tmp_path):
    key = load_or_create_key(tmp_path)
    assert len(key) == 32
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key


def test_key_from_configuration(tmp_path):
    key = bytes(range(32))
    assert key_from_config(base64.b64encode(key).decode()) == key
    with pytest.raises(ValueError, match="base64"):
        key_from_config("not base64!")
    with pytest.raises(ValueError, match="16, 24 or 32"):
        key_from_config(base64.b64encode(b"short").decode())


def test_round_trip_latest_attempt_and_ciphertext_at_rest(custody, sessions):
    custody.store(7, "attempt-1", {"pin": "111111", "puk": "11111111", "management_key": "aa" * 24})
    custody.store(7, "attempt-2", {"pin": "222222", "puk": "22222222", "management_key": "bb" * 24})
    assert custody.release(7) == {"attempt_ref": "attempt-2", "pin": "222222", "puk": "22222222"}
    assert custody.release(7, "attempt-1")["pin"] == "111111"
    assert custody.management_key(7) == b"\xbb" * 24
    with sessions() as session:
        blobs = [row.ciphertext for row in session.scalars(select(CustodySecret))]
    assert len(blobs) == 6 and not any(b"222222" in blob for blob in blobs)
    assert "bb" not in repr(custody)


def test_wrong_key_tampering_and_missing_secrets_are_reported(custody, sessions):
    custody.store(7, "attempt-1", {"pin": "111111", "puk": "11111111"})
    with pytest.raises(CustodyError, match="wrong custody key"):
        Custody(sessions, bytes(32)).release(7)
    with sessions.begin() as session:
        row = session.scalars(select(CustodySecret).where(CustodySecret.kind == "pin")).one()
        row.card_id = 8
    with pytest.raises(CustodyError):
        custody.release(8)
    with pytest.raises(CustodyError, match="no secrets"):
        custody.release(99)
    with pytest.raises(CustodyError, match="management_key"):
        custody.management_key(7)
