"""The virtual card's chip-side cryptography: key pairs generated "on the card" and the
private-key operations GENERAL AUTHENTICATE asks for. Keys never leave as anything but PEM
kept in the card's own state."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tasks.cardsdk.piv.apdu import tlv
from tasks.cardsdk.piv.profiles import ALGORITHMS


class BadKeyRequest(ValueError):
    """The command asked for an algorithm or an operation the key cannot do (the card says 6A80)."""


def generate(algorithm: bytes | None) -> tuple[bytes, bytes]:
    """A new key pair for PIV algorithm ``algorithm``: (private key PEM, 7F49 public key TLV)."""
    if algorithm == bytes([ALGORITHMS["RSA2048"]]):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.public_key().public_numbers()
        body = tlv(0x81, numbers.n.to_bytes(256, "big")) + tlv(0x82, numbers.e.to_bytes(3, "big"))
    elif algorithm == bytes([ALGORITHMS["P256"]]):
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        body = tlv(0x86, point)
    else:
        raise BadKeyRequest("unsupported algorithm")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, tlv(0x7F49, body)


def private_operation(pem: bytes, algorithm: int, items: dict[int, bytes]) -> bytes:
    """Sign (81 challenge) or ECDH (85 point) with the key ``pem``; the 82 response value."""
    key = serialization.load_pem_private_key(pem, password=None)
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    if algorithm != ALGORITHMS["RSA2048" if is_rsa else "P256"]:
        raise BadKeyRequest("algorithm does not match the key")
    if 0x81 in items and is_rsa:
        numbers = key.private_numbers()
        value = int.from_bytes(items[0x81], "big")
        if len(items[0x81]) != 256 or value >= numbers.public_numbers.n:
            raise BadKeyRequest("RSA input out of range")
        return pow(value, numbers.d, numbers.public_numbers.n).to_bytes(256, "big")
    if 0x81 in items:
        # PIV hands ECDSA the hash already sized to the curve: left-pad or truncate to 32.
        digest = items[0x81][:32].rjust(32, b"\x00")
        return key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    if 0x85 in items and not is_rsa:
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), items[0x85])
        except ValueError:
            raise BadKeyRequest("not a P-256 point") from None
        return key.exchange(ec.ECDH(), peer)
    raise BadKeyRequest("no operation requested")
