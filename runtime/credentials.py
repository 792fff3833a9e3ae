"""Mutual TLS for servers and channels.

Servers require a client certificate signed by the project CA and pick up rotated
certificate files without a restart: gRPC asks `_ReloadingCertificates` before each
new handshake, and it answers with a new configuration only when a file changed.
"""

from __future__ import annotations

import logging
import threading

import grpc

from runtime.settings import TlsFiles

_LOGGER = logging.getLogger(__name__)


def _read(tls: TlsFiles) -> tuple[bytes, bytes, bytes]:
    return tls.ca.read_bytes(), tls.cert.read_bytes(), tls.key.read_bytes()


class _ReloadingCertificates:
    """Certificate fetcher for grpc.dynamic_ssl_server_credentials."""

    def __init__(self, tls: TlsFiles):
        self._tls = tls
        self._lock = threading.Lock()
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[float, ...]:
        return tuple(p.stat().st_mtime_ns for p in (self._tls.ca, self._tls.cert, self._tls.key))

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        ca, cert, key = _read(self._tls)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            try:
                stamp = self._current_stamp()
                if stamp == self._stamp:
                    return None
                config = self.configuration()
            except (OSError, ValueError) as error:  # half-written files during rotation: keep the old ones
                _LOGGER.warning("certificate reload skipped: %s", error)
                return None
            self._stamp = stamp
            _LOGGER.info("reloaded rotated certificate %s", self._tls.cert)
            return config


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that demand a CA-signed client certificate and follow file rotation."""
    fetcher = _ReloadingCertificates(tls)
    return grpc.dynamic_ssl_server_credentials(
        # The fetcher returns None for "no change", as grpc documents; types-grpcio's Callable omits it.
        fetcher.configuration(), fetcher, require_client_authentication=True  # type: ignore[arg-type]
    )


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    """Channel credentials that present this workload's certificate and trust only the project CA."""
    ca, cert, key = _read(tls)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
