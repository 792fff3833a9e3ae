"""What the tests, the benchmarks (bench/) and a developer share to run the system's real parts:
processes started on free ports with a generated test PKI (servers), the whole shop as one stack
(stack), shop actions over HTTP (shop), services with a fault built in (faults), certificates that
must be refused (bad_certificates), concurrent callers (concurrency), a DNS server whose answers
change (dns) and hosts on a private network whose links can be cut (network).

A package of its own, not tests/support: bench/ uses it and must not depend on the tests.
"""
