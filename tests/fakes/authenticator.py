"""A software authenticator: answers WebAuthn options the way a browser with a passkey does.

The cryptography is real (a P-256 key made here, ES256 signatures, CBOR as authenticators
write it), so the server's checks run against responses of the same form as Chromium's
(``assets``-free: the JSON our page script sends). It can also lie on purpose: any origin,
any counter, user verification left out, another challenge.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftPasskey:
    """One discoverable credential held by the authenticator."""

    credential_id: bytes
    #: P-256 when made here; Chromium's virtual authenticator picks Ed25519 when offered.
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @classmethod
    def from_pkcs8(
        cls, credential_id: bytes, pkcs8: bytes, rp_id: str, user_handle: bytes, sign_count: int
    ) -> SoftPasskey:
        """A credential whose key comes from elsewhere (Chromium's virtual authenticator)."""
        key = serialization.load_der_private_key(pkcs8, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        return cls(credential_id, key, rp_id, user_handle, sign_count)

    def signature(self, data: bytes) -> bytes:
        """ES256 (DER) or EdDSA over ``data``, as the key's algorithm signs."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def cose_public_key(self) -> bytes:
        assert isinstance(self.private_key, ec.EllipticCurvePrivateKey)
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    """A platform authenticator with user verification; it keeps its passkeys in a list."""

    counts: bool = True
    passkeys: list[SoftPasskey] = field(default_factory=list)

    def create(
        self, options: str | dict[str, Any], origin: str, *, verified: bool = True
    ) -> dict[str, Any]:
        """``navigator.credentials.create()``: a new passkey and the registration response."""
        public_key = json.loads(options) if isinstance(options, str) else options
        excluded = {c["id"] for c in public_key.get("excludeCredentials", [])}
        if any(b64url(p.credential_id) in excluded for p in self.passkeys):
            raise ValueError("InvalidStateError: a passkey of this account is here already")
        passkey = SoftPasskey(
            secrets.token_bytes(32),
            ec.generate_private_key(ec.SECP256R1()),
            public_key["rp"]["id"],
            unb64url(public_key["user"]["id"]),
        )
        self.passkeys.append(passkey)
        client_data = _client_data("webauthn.create", public_key["challenge"], origin)
        attested = (
            bytes(16)  # AAGUID: none
            + struct.pack(">H", len(passkey.credential_id))
            + passkey.credential_id
            + passkey.cose_public_key()
        )
        auth_data = self._auth_data(passkey, AT | UP | (UV if verified else 0)) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return _credential(
            passkey,
            clientDataJSON=b64url(client_data),
            attestationObject=b64url(attestation),
            transports=["internal", "hybrid"],
        )

    def get(
        self,
        options: str | dict[str, Any],
        origin: str,
        *,
        passkey: SoftPasskey | None = None,
        verified: bool = True,
    ) -> dict[str, Any]:
        """``navigator.credentials.get()``: an assertion by a passkey of the options' RP."""
        public_key = json.loads(options) if isinstance(options, str) else options
        passkey = passkey or next(p for p in self.passkeys if p.rp_id == public_key["rpId"])
        client_data = _client_data("webauthn.get", public_key["challenge"], origin)
        return self.sign(passkey, client_data, UP | (UV if verified else 0))

    def sign(self, passkey: SoftPasskey, client_data: bytes, flags: int) -> dict[str, Any]:
        """An assertion over any client data (a crafted one included), signed for real."""
        auth_data = self._auth_data(passkey, flags)
        signature = passkey.signature(auth_data + hashlib.sha256(client_data).digest())
        return _credential(
            passkey,
            clientDataJSON=b64url(client_data),
            authenticatorData=b64url(auth_data),
            signature=b64url(signature),
            userHandle=b64url(passkey.user_handle),
        )

    def _auth_data(self, passkey: SoftPasskey, flags: int) -> bytes:
        if self.counts:
            passkey.sign_count += 1
        rp_id_hash = hashlib.sha256(passkey.rp_id.encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", passkey.sign_count)


def _credential(passkey: SoftPasskey, **response: Any) -> dict[str, Any]:
    """A ``PublicKeyCredential`` as the page script sends it (binary values base64url)."""
    return {
        "id": b64url(passkey.credential_id),
        "rawId": b64url(passkey.credential_id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": response,
    }


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()
