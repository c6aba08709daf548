"""Structured logs: one JSON object a line with the order, card and station ids, never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest
from click.testing import CliRunner

from engine import cli
from engine.logs import JsonFormatter, configure_logging, json_wanted


@pytest.fixture
def json_log():
    """A logger writing JSON lines into a buffer; ``lines()`` parses what was written."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cardflow.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.lines = lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logger.text = buffer.getvalue
    yield logger
    logger.removeHandler(handler)


def test_a_line_is_one_json_object_with_the_ids(json_log):
    json_log.info("card %s produced", "TC-000001",
                  extra={"order_id": 7, "card_id": 42, "station": "desk-1", "instance_id": "abc"})
    json_log.warning("plain")
    first, second = json_log.lines()
    assert first["message"] == "card TC-000001 produced"
    assert first["level"] == "INFO" and first["logger"] == "cardflow.test.logs"
    assert first["ts"].endswith("+00:00")
    ids = (first["order_id"], first["card_id"], first["station"], first["instance_id"])
    assert ids == (7, 42, "desk-1", "abc")
    assert second["message"] == "plain" and "order_id" not in second


def test_secret_named_fields_are_never_written(json_log):
    json_log.info("issued", extra={
        "card_id": 1, "pin": "123456", "puk": "87654321", "password": "hunter2-secret",
        "ca_passphrase": "s3cret-pass", "custody_key": "QUJD", "api_token": "tok-999",
        "details": {"new_pin": "654321", "nested": [{"client_secret": "zzz"}], "ok": "kept"}})
    text = json_log.text()
    for secret in ("123456", "87654321", "hunter2", "s3cret-pass", "QUJD", "tok-999", "654321", "zzz"):
        assert secret not in text
    (line,) = json_log.lines()
    assert line["card_id"] == 1 and line["details"] == {"nested": [{}], "ok": "kept"}
    for name in ("pin", "puk", "password", "ca_passphrase", "custody_key", "api_token"):
        assert name not in line


def test_secret_pairs_in_the_text_and_trace_are_masked(json_log):
    try:
        raise ValueError("bad card: pin=123456 puk: '87654321'")
    except ValueError:
        json_log.exception("encoding failed with password=hunter2 for card %s", "TC-1")
    (line,) = json_log.lines()
    assert "hunter2" not in line["message"] and "TC-1" in line["message"]
    assert "123456" not in line["exception"] and "87654321" not in line["exception"]
    assert "ValueError" in line["exception"]


def test_configure_logging_replaces_its_handler_and_writes_json():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging(json=False, stream=io.StringIO())
        stream = io.StringIO()
        configure_logging(json=True, stream=stream)
        assert len(root.handlers) == len(before) + 1
        logging.getLogger("cardflow.test").info("hello", extra={"station": "s1"})
        line = json.loads(stream.getvalue().splitlines()[-1])
        assert line["message"] == "hello" and line["station"] == "s1"
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
        root.setLevel(level)


def test_log_format_setting():
    assert json_wanted({}) is False
    assert json_wanted({"CARDFLOW_LOG_FORMAT": "JSON"}) is True
    assert json_wanted({"CARDFLOW_LOG_FORMAT": "text"}) is False
    with pytest.raises(ValueError, match="CARDFLOW_LOG_FORMAT"):
        json_wanted({"CARDFLOW_LOG_FORMAT": "xml"})


def test_the_serving_commands_refuse_an_unknown_log_format(tmp_path, monkeypatch):
    monkeypatch.setenv("CARDFLOW_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("CARDFLOW_LOG_FORMAT", "xml")
    result = CliRunner().invoke(cli.main, ["run", "--port", "1"])
    assert result.exit_code == 1 and "CARDFLOW_LOG_FORMAT must be json or text" in result.output
    # Only the serving commands set up logging; the others do not read the setting.
    result = CliRunner().invoke(cli.main, ["versions"])
    assert "CARDFLOW_LOG_FORMAT" not in result.output
