"""The vpcd socket protocol and state persistence of the virtual card process, without pcscd."""

from __future__ import annotations

import socket
import threading

from tasks.cardsdk.piv.vpcd import VirtualCardProcess


def frame(payload: bytes) -> bytes:
    """vpcd framing: 2-byte big-endian length, then the payload."""
    return len(payload).to_bytes(2, "big") + payload


def receive(connection: socket.socket) -> bytes:
    """Read one framed message."""
    size = int.from_bytes(connection.recv(2), "big")
    data = b""
    while len(data) < size:
        data += connection.recv(size - len(data))
    return data


def test_process_speaks_vpcd_and_persists_the_card(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    state = tmp_path / "card.json"
    process = VirtualCardProcess(port=port, state_file=state, fresh=True)
    worker = threading.Thread(target=process.serve)
    worker.start()
    try:
        connection, _ = server.accept()
        with connection:
            connection.sendall(frame(b"\x01") + frame(b"\x04"))
            assert receive(connection) == process.card.atr
            connection.sendall(frame(bytes.fromhex("00A4040005A000000308")))
            assert receive(connection)[-2:] == b"\x90\x00"
            connection.sendall(frame(bytes.fromhex("0020008008303030303030FFFF")))
            assert receive(connection) == bytes.fromhex("63C2")
    finally:
        process.stop_requested = True
        worker.join(timeout=5)
        server.close()
    reloaded = VirtualCardProcess(port=port, state_file=state)
    assert reloaded.card.serial == process.card.serial and reloaded.card.pin_tries == 2
    assert VirtualCardProcess(port=port, state_file=state, fresh=True).card.serial != process.card.serial


def test_blank_cards_are_of_the_configured_stock(tmp_path):
    from tasks.cardsdk.piv import profiles

    stock = profiles.get("piv-aes128-fixed-key")
    process = VirtualCardProcess(port=1, state_file=tmp_path / "card.json", fresh=True, profile=stock)
    card = process.card
    assert (card.pin_tries, card.puk_tries, card.management_algorithm) == (5, 10, "AES128")
    assert (card.authentication, card.management_key_change) == ("external", "none")
    # A card kept in the state file keeps its stock's behaviour after a restart.
    reloaded = VirtualCardProcess(port=1, state_file=tmp_path / "card.json")
    assert (reloaded.card.pin_retries, reloaded.card.authentication) == (5, "external")


def test_the_command_refuses_an_unknown_or_broken_profile(tmp_path):
    from click.testing import CliRunner

    from tasks.cardsdk.commands import virtual_card

    broken = tmp_path / "stock.json"
    broken.write_text('{"management_algorithm": "3DES"}')
    for profile, reason in (("nope", "unknown card profile 'nope'"), (str(broken), "is missing"),
                            (str(tmp_path / "absent.json"), "absent.json")):
        arguments = ["--profile", profile, "--state-file", str(tmp_path / "s.json")]
        result = CliRunner().invoke(virtual_card, arguments)
        assert result.exit_code != 0 and reason in result.output
    assert not (tmp_path / "s.json").exists()
