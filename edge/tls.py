"""The edge's HTTPS: Mozilla's "intermediate" server profile (https://ssl-config.mozilla.org).

    context = intermediate(default_context)     # gunicorn's ssl_context hook (edge/gunicorn_conf.py)

TLS 1.2 and 1.3 only. TLS 1.3 offers OpenSSL's default suites, which are the profile's three (AES-GCM
and ChaCha20-Poly1305). TLS 1.2 offers only AEAD ciphers with an ephemeral ECDH key exchange, in the
profile's order: no CBC, no RSA key exchange, no SHA-1 MAC. Key exchange is on X25519, P-256 or P-384.
As the profile says, the client picks among them: every one offered is strong.

The profile's three DHE-RSA ciphers are left out: they need DH parameters (which the edge does not
load, so OpenSSL would never pick them) and an RSA certificate (the project's PKI issues P-256 keys).

Python 3.11's ssl module cannot restrict the key exchange groups (set_ecdh_curve sets one group only;
set_groups is newer than 3.11), so `_set_groups` calls OpenSSL's SSL_CTX_set1_groups_list on the
context's SSL_CTX itself, after checking that the pointer it found is that context's. If it cannot, the
edge does not start (gunicorn_conf.py checks once, at start): a profile silently weaker than the one
documented is worse than a clear error.
"""

from __future__ import annotations

import ctypes
import functools
import ssl
import sys

TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])
GROUPS = "X25519:P-256:P-384"
_SSL_CTRL_SET_GROUPS_LIST = 92  # openssl/ssl.h; SSL_CTX_set1_groups_list() is a macro over SSL_CTX_ctrl()


def intermediate(context: ssl.SSLContext) -> ssl.SSLContext:
    """`context` (a server context with its certificate loaded) restricted to the profile; returns it."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(TLS12_CIPHERS)
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # the profile: the client's order decides
    _set_groups(context, GROUPS)
    return context


def _set_groups(context: ssl.SSLContext, groups: str) -> None:
    """SSL_CTX_set1_groups_list(ctx, groups) on the OpenSSL context behind `context`; RuntimeError if not possible."""
    libssl, ctx = _openssl_context(context)
    if libssl.SSL_CTX_ctrl(ctx, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) != 1:
        raise RuntimeError(f"OpenSSL refused the TLS groups {groups}")


def _openssl_context(context: ssl.SSLContext) -> tuple[ctypes.CDLL, int]:
    """(libssl, SSL_CTX pointer) of a CPython SSLContext: the pointer is the object's first field after
    its header (Modules/_ssl.c, PySSLContext). OpenSSL must report the same options for it as Python
    does before it is used to change anything."""
    libssl = _libssl()
    ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not ctx or libssl.SSL_CTX_get_options(ctx) != context.options:
        raise RuntimeError("cannot find the OpenSSL context of an ssl.SSLContext in this Python")
    return libssl, ctx


@functools.cache
def _libssl() -> ctypes.CDLL:
    """The libssl Python's ssl module uses (its symbols resolve through the _ssl extension that links it)."""
    if sys.implementation.name != "cpython":
        raise RuntimeError("setting TLS groups needs CPython's ssl module")
    import _ssl

    libssl = ctypes.CDLL(_ssl.__file__)
    libssl.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    libssl.SSL_CTX_ctrl.restype = ctypes.c_long
    libssl.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_get_options.restype = ctypes.c_uint64
    return libssl
