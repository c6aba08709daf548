"""The PIV card management key (key reference 9B): single-block ciphering for its challenge-response.

Both the client and the virtual card need the same primitive; 3DES comes from cryptography's
``decrepit`` module because the main module warns (and warnings are errors in our tests).
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tasks.cardsdk.piv.profiles import ALGORITHMS, MANAGEMENT_KEY_LENGTHS

ALGORITHM_NAMES = {ALGORITHMS[name]: name for name in MANAGEMENT_KEY_LENGTHS}


def block_size(algorithm: str) -> int:
    """Challenge length in bytes: the cipher's block (8 for 3DES, 16 for AES)."""
    return 8 if algorithm == "3DES" else 16


def _cipher(algorithm: str, key: bytes) -> Cipher:
    """ECB over exactly one block, as SP 800-73-4 GENERAL AUTHENTICATE with 9B specifies."""
    if MANAGEMENT_KEY_LENGTHS.get(algorithm) != len(key):
        raise ValueError(f"a management key for {algorithm} has the wrong length")
    primitive = TripleDES(key) if algorithm == "3DES" else algorithms.AES(key)
    return Cipher(primitive, modes.ECB())


def encrypt_block(algorithm: str, key: bytes, block: bytes) -> bytes:
    """Encrypt one challenge block with the management key."""
    encryptor = _cipher(algorithm, key).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def decrypt_block(algorithm: str, key: bytes, block: bytes) -> bytes:
    """Decrypt one witness block with the management key."""
    decryptor = _cipher(algorithm, key).decryptor()
    return decryptor.update(block) + decryptor.finalize()
