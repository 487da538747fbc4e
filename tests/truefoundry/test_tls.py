"""The TLS context each host gets: CA-verified for https, and never one that skips verification."""

from __future__ import annotations

import ssl

from jobfallback.truefoundry.connections import _tls_context


def test_https_host_verifies_against_the_ca_bundle() -> None:
    context = _tls_context(https=True)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


def test_plain_http_host_skips_the_ca_bundle_but_would_still_verify() -> None:
    context = _tls_context(https=False)
    assert context.cert_store_stats()["x509_ca"] == 0
    # Fails closed: a handshake with this context cannot succeed without a trusted CA.
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
