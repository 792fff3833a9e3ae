"""The dev PKI: workload certificates that carry their SPIFFE id, private keys kept private, safe re-runs."""

import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from runtime import pki
from services.registry import registry

WORKLOADS = registry({}).identities


def test_workload_certificate_carries_its_spiffe_id_and_both_usages(tmp_path):
    pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    cert = x509.load_pem_x509_certificate((tmp_path / "orders.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://shop.local/orders"]
    assert {"localhost", "orders"} <= set(san.get_values_for_type(x509.DNSName))
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)


def test_private_keys_are_readable_by_the_owner_only(tmp_path):
    pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    for key in tmp_path.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_a_second_run_keeps_every_file(tmp_path):
    pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    report = pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    assert {what for _, what in report} == {"kept"}
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_certificate_close_to_expiry_is_reissued(tmp_path):
    pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    ca = pki.load_issued(tmp_path / "ca.pem", tmp_path / "ca.key")
    soon = datetime.now(UTC) + timedelta(days=2)
    expiring = pki.issue_certificate(ca, "edge", "shop.local", not_after=soon)
    (tmp_path / "edge.pem").write_bytes(expiring.cert_pem)
    report = dict(pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS))
    assert report[str(tmp_path / "edge.pem")] == "written"
    assert report[str(tmp_path / "orders.pem")] == "kept"


@pytest.mark.parametrize("workload, domain", [("Edge", "shop.local"), ("a/b", "shop.local"), ("edge", "not a domain")])
def test_bad_names_are_refused(workload, domain):
    with pytest.raises(ValueError):
        pki.issue_certificate(pki.create_ca(), workload, domain)


def test_the_ca_may_sign_workloads_but_no_intermediate_ca(tmp_path):
    pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0


def test_every_workload_certificate_passes_the_checks_services_make_on_peers(tmp_path):
    from runtime.identity import certificate_problem

    pki.write_dev_pki(tmp_path, "shop.local", WORKLOADS)
    for workload in WORKLOADS:
        assert certificate_problem((tmp_path / f"{workload}.pem").read_bytes()) is None, workload
