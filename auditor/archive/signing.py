"""Signatures of manifests, chain heads and checkpoints: Ed25519, HMAC-SHA256 or a KMS key.

A signature covers the exact bytes of the file it signs and sits beside it as ``<file>.sig``::

    {"method": "ed25519", "key_id": "3f9a...", "algorithm": "Ed25519", "signature": "<base64>"}

Keys come from the environment (the config names the variable, never the key), or from KMS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auditor.config import SigningSettings
from auditor.errors import ConfigError, DeliveryError

SIG_SUFFIX = ".sig"

# KMS signs a SHA-256 digest (MessageType DIGEST), so manifests of any size fit its 4 KB message limit
# (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html). The first of these the key supports is used.
_KMS_ALGORITHMS = ("ECDSA_SHA_256", "RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256")


class Signer(Protocol):
    method: str
    key_id: str

    def sign(self, data: bytes) -> dict[str, str]:
        """The signature document of ``data``."""
        ...


def sig_bytes(doc: Mapping[str, str]) -> bytes:
    return (json.dumps(dict(doc), indent=2, sort_keys=True) + "\n").encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- Ed25519 ------------------------------------------------------------------------------------------

def ed25519_key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def load_ed25519_private(text: str) -> Any:
    """An Ed25519 private key from PEM (PKCS#8, as ``openssl genpkey -algorithm ed25519`` writes) or from
    its 32-byte seed in base64 or hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 key")
        return key
    return Ed25519PrivateKey.from_private_bytes(_raw32(text))


def load_ed25519_public(text: str) -> Any:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or its 32 raw bytes in base64 or hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw32(text))


def public_raw(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _raw32(text: str) -> bytes:
    for decode in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    raise ValueError("not a PEM key, nor 32 bytes in base64 or hex")


class Ed25519Signer:
    method = "ed25519"

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = ed25519_key_id(public_raw(self.public_key))

    def sign(self, data: bytes) -> dict[str, str]:
        return {"method": self.method, "key_id": self.key_id, "algorithm": "Ed25519",
                "signature": _b64(self._key.sign(data))}


# --- HMAC ---------------------------------------------------------------------------------------------

def hmac_key_id(secret: bytes) -> str:
    # Derived with a fixed label so the ID names the key without being a usable hash of it.
    return hashlib.sha256(b"auditor hmac key id\0" + secret).hexdigest()[:16]


class HmacSigner:
    method = "hmac"

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self.key_id = hmac_key_id(secret)

    def sign(self, data: bytes) -> dict[str, str]:
        return {"method": self.method, "key_id": self.key_id, "algorithm": "HMAC-SHA256",
                "signature": _b64(hmac.new(self._secret, data, hashlib.sha256).digest())}


# --- KMS ----------------------------------------------------------------------------------------------

class KmsSigner:
    method = "kms"

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        try:
            meta = client.describe_key(KeyId=key_id)["KeyMetadata"]
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; all mean "cannot sign"
            raise DeliveryError(f"KMS key {key_id}: {exc}") from exc
        supported = [a for a in _KMS_ALGORITHMS if a in meta.get("SigningAlgorithms", ())]
        if not supported:
            raise DeliveryError(f"KMS key {key_id} cannot sign with any of {', '.join(_KMS_ALGORITHMS)} "
                                "(it must be an asymmetric SIGN_VERIFY key)")
        self.key_id = meta.get("Arn", key_id)
        self.algorithm = supported[0]

    def sign(self, data: bytes) -> dict[str, str]:
        digest = hashlib.sha256(data).digest()
        try:
            out = self._client.sign(KeyId=self.key_id, Message=digest, MessageType="DIGEST",
                                    SigningAlgorithm=self.algorithm)
        except Exception as exc:  # noqa: BLE001
            raise DeliveryError(f"KMS sign with {self.key_id}: {exc}") from exc
        return {"method": self.method, "key_id": self.key_id, "algorithm": self.algorithm,
                "signature": _b64(out["Signature"])}


def make_signer(settings: SigningSettings, env: Mapping[str, str], kms_client: Any = None) -> Signer | None:
    """The signer the config asks for, or None for ``method: none``. A missing or bad key is a config error:
    archiving unsigned when signing was asked for would silently weaken the evidence."""
    if settings.method == "none":
        return None
    if settings.method == "kms":
        if kms_client is None:
            raise ConfigError("archive.signing.method kms needs a KMS client")
        return KmsSigner(kms_client, settings.kms_key_id or "")
    value = env.get(settings.key_env or "")
    if not value:
        raise ConfigError(f"archive.signing: the environment variable {settings.key_env} is not set "
                          f"(it holds the {settings.method} key)")
    if settings.method == "hmac":
        return HmacSigner(value.encode())
    try:
        return Ed25519Signer(load_ed25519_private(value))
    except ValueError as exc:
        raise ConfigError(f"archive.signing: ${settings.key_env} is not an Ed25519 private key: {exc}") from None


# --- verifying ----------------------------------------------------------------------------------------

@dataclass
class Keyring:
    """What a verifier trusts: Ed25519 public keys and HMAC secrets by key ID, and a KMS client."""

    ed25519: dict[str, Any] = field(default_factory=dict)
    hmac: dict[str, bytes] = field(default_factory=dict)
    kms_client: Any = None
    kms_factory: Callable[[str], Any] | None = None  # builds a KMS client for a key ARN, on first use
    expect_signed: bool = False  # signing is configured: an unsigned head is then a problem
    untrusted_ids: set[str] = field(default_factory=set)  # keys read from the archive itself
    used_untrusted: set[str] = field(default_factory=set)  # untrusted keys that verified something

    def add_ed25519(self, public_key: Any, *, trusted: bool = True) -> str:
        key_id = ed25519_key_id(public_raw(public_key))
        if key_id in self.ed25519 and key_id not in self.untrusted_ids:
            return key_id
        self.ed25519[key_id] = public_key
        if trusted:
            self.untrusted_ids.discard(key_id)
        else:
            self.untrusted_ids.add(key_id)
        return key_id

    def add_hmac(self, secret: bytes) -> str:
        key_id = hmac_key_id(secret)
        self.hmac[key_id] = secret
        return key_id

    def check(self, data: bytes, sig: Mapping[str, Any]) -> tuple[str, str]:
        """("ok" | "bad" | "unverifiable", reason) for a signature document over ``data``."""
        method, key_id = sig.get("method"), str(sig.get("key_id", ""))
        try:
            signature = base64.b64decode(str(sig.get("signature", "")), validate=True)
        except (ValueError, binascii.Error):
            return "bad", "the signature is not base64"
        if method == "ed25519":
            key = self.ed25519.get(key_id)
            if key is None:
                return "unverifiable", f"no Ed25519 public key with id {key_id} (pass --public-key)"
            from cryptography.exceptions import InvalidSignature
            try:
                key.verify(signature, data)
            except InvalidSignature:
                return "bad", f"the Ed25519 signature (key {key_id}) does not match"
            if key_id in self.untrusted_ids:
                self.used_untrusted.add(key_id)
            return "ok", ""
        if method == "hmac":
            secret = self.hmac.get(key_id)
            if secret is None:
                return "unverifiable", f"no HMAC secret with id {key_id} (set the variable archive.signing.key_env names)"
            expected = hmac.new(secret, data, hashlib.sha256).digest()
            return ("ok", "") if hmac.compare_digest(expected, signature) else \
                ("bad", f"the HMAC (key {key_id}) does not match")
        if method == "kms":
            if self.kms_client is None and self.kms_factory is not None:
                self.kms_client = self.kms_factory(key_id)
            if self.kms_client is None:
                return "unverifiable", f"signed with KMS key {key_id}; no KMS client to check it"
            try:
                out = self.kms_client.verify(KeyId=key_id, Message=hashlib.sha256(data).digest(), MessageType="DIGEST",
                                             Signature=signature, SigningAlgorithm=str(sig.get("algorithm")))
            except Exception as exc:  # noqa: BLE001
                # KMS answers a wrong signature with KMSInvalidSignatureException rather than SignatureValid=false.
                if "InvalidSignature" in type(exc).__name__ or "InvalidSignature" in str(exc):
                    return "bad", f"the KMS signature (key {key_id}) does not match"
                return "unverifiable", f"KMS verify with {key_id} failed: {exc}"
            return ("ok", "") if out.get("SignatureValid") else ("bad", f"the KMS signature (key {key_id}) does not match")
        return "bad", f"unknown signature method {method!r}"
