"""Jaeger v2 for `make up` and the tests: a launcher (launcher.py) and a query API client (query.py).

    python -m tools.jaeger run                 # Jaeger in the foreground on its standard ports
    python -m tools.jaeger trace TRACE_ID      # one trace from a running Jaeger, as a tree
    python -m tools.jaeger traces SERVICE      # the last hour's traces through SERVICE
"""

from tools.jaeger.launcher import CONFIG, PORT_VARIABLES, Jaeger, JaegerPorts
from tools.jaeger.query import CLIENT, ERROR, SERVER, QueryClient, Span

__all__ = ["CLIENT", "CONFIG", "ERROR", "PORT_VARIABLES", "SERVER", "Jaeger", "JaegerPorts", "QueryClient", "Span"]
