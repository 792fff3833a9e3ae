"""python -m services.catalog: run the catalog service until SIGTERM."""

import sys

from runtime.logs import configure_logging
from runtime.settings import ConfigError
from services.catalog.server import SERVICE, create_server, load_settings


def main() -> int:
    configure_logging(SERVICE)
    try:
        server, _port = create_server(load_settings())
    except ConfigError as error:
        print(f"{SERVICE}: configuration error: {error}", file=sys.stderr)
        return 2
    server.start()
    server.run_until_signal()
    return 0


if __name__ == "__main__":
    sys.exit(main())
