"""python -m edge: serve the edge under gunicorn (production WSGI server), settings in gunicorn_conf.py."""

import pathlib
import sys

from edge.config import EdgeConfig
from runtime.settings import ConfigError


def main() -> int:
    try:
        EdgeConfig.from_env()  # fail here, once, with the variable's name, not in every worker
    except ConfigError as error:
        print(f"edge: configuration error: {error}", file=sys.stderr)
        return 2
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "-c", str(pathlib.Path(__file__).with_name("gunicorn_conf.py")), "edge.app:create_app()"]
    return run()


if __name__ == "__main__":
    sys.exit(main())
