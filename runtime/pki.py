"""Dev PKI: a CA and one certificate per workload, for mutual TLS on one machine or in Compose.

    python -m runtime.pki --out .dev/pki --trust-domain example.local --workload api --workload operator [--force]

Certificates are generated, never committed. Each workload certificate carries the
SPIFFE-style URI SAN spiffe://<trust-domain>/<workload>, which services authorize on,
and is valid both as a server and as a client certificate. Re-running keeps every file
that is still valid, so the command is safe to run at every start.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import pathlib
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_WORKLOAD = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_RENEW_BEFORE = timedelta(days=7)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM (the key unencrypted PKCS#8)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return cast(ec.EllipticCurvePrivateKey, serialization.load_pem_private_key(self.key_pem, password=None))


def spiffe_id(trust_domain: str, workload: str) -> str:
    return f"spiffe://{trust_domain}/{workload}"


def _validity(days: int, not_before: datetime | None, not_after: datetime | None) -> tuple[datetime, datetime]:
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)  # tolerate small clock skew
    return start, not_after or start + timedelta(days=days)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def create_ca(common_name: str = "Dev CA", *, days: int = 365,
              not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
    """A self-signed CA that may sign workload certificates (and nothing below them)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(days, not_before, not_after)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def issue_certificate(ca: Issued, workload: str, trust_domain: str, *, days: int = 90,
                      not_before: datetime | None = None, not_after: datetime | None = None,
                      dns_names: tuple[str, ...] | None = None,
                      ip_addresses: tuple[str, ...] = ("127.0.0.1", "::1")) -> Issued:
    """A workload certificate (server and client) with its SPIFFE id, signed by `ca`."""
    if not _WORKLOAD.match(workload):
        raise ValueError(f"workload name {workload!r} must be lowercase letters, digits and dashes")
    if not _TRUST_DOMAIN.match(trust_domain):
        raise ValueError(f"trust domain {trust_domain!r} must be a lowercase DNS-like name")
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, ca_key = ca.cert, ca.key
    start, end = _validity(days, not_before, not_after)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id(trust_domain, workload))]
    names += [x509.DNSName(d) for d in (dns_names if dns_names is not None else ("localhost", workload))]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, workload)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def load_issued(cert_path: pathlib.Path, key_path: pathlib.Path) -> Issued:
    return Issued(pathlib.Path(cert_path).read_bytes(), pathlib.Path(key_path).read_bytes())


def _write_atomic(path: pathlib.Path, data: bytes, mode: int) -> None:
    """Writes via a temp file and rename, so a reader (a reloading server) never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _still_good(path: pathlib.Path, ca: x509.Certificate | None, expected_id: str | None) -> bool:
    """Whether a certificate file exists, is valid for a while yet, and matches the CA and SPIFFE id."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - datetime.now(UTC) < _RENEW_BEFORE:
        return False
    if ca is not None:
        try:
            cert.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):
            return False
    if expected_id is not None:
        try:
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            return False
        return uris == [expected_id]
    return True


def write_dev_pki(out_dir: pathlib.Path, trust_domain: str, workloads: tuple[str, ...], *,
                  force: bool = False) -> list[tuple[str, str]]:
    """Creates or completes the dev PKI in out_dir; returns (path, "written"|"kept") per file pair."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)
    report = []
    ca_pem, ca_key = out_dir / "ca.pem", out_dir / "ca.key"
    if force or not ca_key.exists() or not _still_good(ca_pem, None, None):
        ca = create_ca()
        _write_atomic(ca_key, ca.key_pem, 0o600)
        _write_atomic(ca_pem, ca.cert_pem, 0o644)
        force = True  # a new CA invalidates every certificate it did not sign
        report.append((str(ca_pem), "written"))
    else:
        ca = load_issued(ca_pem, ca_key)
        report.append((str(ca_pem), "kept"))
    for workload in workloads:
        cert_path, key_path = out_dir / f"{workload}.pem", out_dir / f"{workload}.key"
        if not force and key_path.exists() and _still_good(cert_path, ca.cert, spiffe_id(trust_domain, workload)):
            report.append((str(cert_path), "kept"))
            continue
        issued = issue_certificate(ca, workload, trust_domain)
        _write_atomic(key_path, issued.key_pem, 0o600)
        _write_atomic(cert_path, issued.cert_pem, 0o644)
        report.append((str(cert_path), "written"))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description="Create the dev CA and workload certificates (never commit them).")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".dev/pki"))
    parser.add_argument("--trust-domain", required=True, help="the SPIFFE trust domain, e.g. example.local")
    parser.add_argument("--workload", action="append", dest="workloads", required=True,
                        help="a workload to issue a certificate for (repeat for each)")
    parser.add_argument("--force", action="store_true", help="recreate the CA and every certificate")
    args = parser.parse_args()
    try:
        report = write_dev_pki(args.out, args.trust_domain, tuple(args.workloads), force=args.force)
    except ValueError as error:
        print(f"pki: {error}", file=sys.stderr)
        return 2
    for path, what in report:
        print(f"{what:>7}  {path}")
    print(f"grpcurl: -cacert {args.out}/ca.pem -cert {args.out}/operator.pem -key {args.out}/operator.key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
