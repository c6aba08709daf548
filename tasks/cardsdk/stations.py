"""Building a production station from its configuration: printer, CA, custody and encoder."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.custody import Custody, key_from_config, load_or_create_key
from tasks.cardsdk.encoder import build_encoder
from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.piv.feeder import VirtualCardFeeder
from tasks.cardsdk.pki_config import PkiConfig
from tasks.cardsdk.printer import SpoolPrinter
from tasks.cardsdk.station import Station

log = logging.getLogger(__name__)


def build_station(config, instance_path: Path, ca_passphrase: str, custody_key: str | None,
                  sessions: sessionmaker, pki: PkiConfig | None = None) -> Station:
    """A station per ``config`` (name, transport, reader, profile); without a CA it only prints.

    ``config`` is any object with ``name``, ``transport``, ``reader``, ``profile`` and
    ``virtual_card_state``.
    """
    key = key_from_config(custody_key) if custody_key else load_or_create_key(instance_path)
    try:
        ca = LocalCA(ca_folder(instance_path), ca_passphrase, sessions, pki)
    except CardSdkError as error:
        log.warning("station %s cannot encode: %s", config.name, error)
        return Station(SpoolPrinter(), None, config.name, unavailable=str(error))
    feeder = VirtualCardFeeder(config.virtual_card_state) if config.virtual_card_state else None
    encoder = build_encoder(config.transport, config.reader, config.profile, ca, Custody(sessions, key),
                            feeder)
    return Station(SpoolPrinter(), encoder, config.name,
                   device_seconds=getattr(config, "device_seconds", 0.0))
