"""Private signing keys at rest: AES-256-GCM under a key derived with HKDF from
GATEHOUSE_SECRET_KEY, the key id bound as associated data (a sealed key cannot be
swapped onto another id). Also makes new key material."""

import base64
import os
import secrets

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _cipher(master_secret: bytes) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse signing keys v1"
    ).derive(master_secret)
    return AESGCM(key)


def encrypt_private_key(master_secret: bytes, kid: str, material: bytes) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(master_secret).encrypt(nonce, material, kid.encode())
    return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_private_key(master_secret: bytes, kid: str, stored: str) -> bytes:
    raw = base64.urlsafe_b64decode(stored.removeprefix("v1."))
    return _cipher(master_secret).decrypt(raw[:12], raw[12:], kid.encode())


def generate_private_key(alg: str) -> bytes:
    """New key material: PKCS#8 PEM for RS256/ES256, 32 random bytes for HS256."""
    if alg == "HS256":
        return secrets.token_bytes(32)
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported algorithm {alg}")
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
