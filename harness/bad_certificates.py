"""Workload certificates that the dev CA signs but a service must refuse, each wrong in one way.

Built as runtime/pki.py builds real ones (same names, SPIFFE id, usages), so only the named flaw
differs. The TLS handshake accepts every one of them; the services' interceptor must not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime import pki


def _certificate(issuer: pki.Issued, name: str, *, spiffe: str | None, is_ca: bool = False, key=None) -> pki.Issued:
    key = key or ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC) - timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=is_ca, crl_sign=is_ca,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if spiffe:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]), critical=False)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pki.Issued(builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), key_pem)


def via_intermediate(ca: pki.Issued, workload: str, trust_domain: str) -> pki.Issued:
    """A workload certificate from an intermediate CA that `ca` signed, presented with that CA.
    The dev CA says pathLenConstraint=0, but a trust anchor's path length is not applied by BoringSSL."""
    intermediate = _certificate(ca, "Rogue intermediate", spiffe=None, is_ca=True)
    leaf = _certificate(intermediate, workload, spiffe=pki.spiffe_id(trust_domain, workload))
    return pki.Issued(leaf.cert_pem + intermediate.cert_pem, leaf.key_pem)


def ca_as_leaf(ca: pki.Issued, workload: str, trust_domain: str) -> pki.Issued:
    """A certificate that names a workload but is itself a CA (CA:TRUE)."""
    return _certificate(ca, workload, spiffe=pki.spiffe_id(trust_domain, workload), is_ca=True)


def weak_rsa(ca: pki.Issued, workload: str, trust_domain: str) -> pki.Issued:
    """A workload certificate with a 1024-bit RSA key."""
    return _certificate(ca, workload, spiffe=pki.spiffe_id(trust_domain, workload),
                        key=rsa.generate_private_key(public_exponent=65537, key_size=1024))


# DER of the AlgorithmIdentifier for ecdsa-with-SHA256 and ecdsa-with-SHA1 (RFC 5758, RFC 3279).
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def sha1_signed(ca: pki.Issued, workload: str, trust_domain: str) -> pki.Issued:
    """A workload certificate signed with ECDSA over SHA-1. `cryptography` refuses to build one, so
    a normal certificate's to-be-signed part gets the SHA-1 algorithm and is signed again."""
    good = _certificate(ca, workload, spiffe=pki.spiffe_id(trust_domain, workload))
    tbs_content = _der_content(x509.load_pem_x509_certificate(good.cert_pem).tbs_certificate_bytes)
    tbs = _der(0x30, tbs_content.replace(_ECDSA_SHA256, _ECDSA_SHA1, 1))
    signature = ca.key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    der = _der(0x30, tbs + _ECDSA_SHA1 + _der(0x03, b"\x00" + signature))
    return pki.Issued(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM), good.key_pem)


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_content(element: bytes) -> bytes:
    size, start = element[1], 2
    if size & 0x80:
        count = size & 0x7F
        size, start = int.from_bytes(element[2:2 + count], "big"), 2 + count
    return element[start:start + size]


REFUSED = {"via-intermediate": via_intermediate, "ca-leaf": ca_as_leaf, "weak-rsa": weak_rsa, "sha1": sha1_signed}
