"""The main of every operator command (python -m services.<name>.manage ...): parse the arguments,
run the command, print what it did; a bad setting or an input the service refuses is one line on
stderr and exit status 2, never a traceback.

    def main() -> int:
        parser = argparse.ArgumentParser(description="catalog operator commands")
        parser.add_subparsers(dest="command", required=True).add_parser("seed-demo", help="...")
        return run_command(parser, lambda args: seed_demo(...))
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from runtime.settings import ConfigError
from services.common.errors import DomainError


def run_command(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], str]) -> int:
    args = parser.parse_args()
    try:
        print(run(args))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    return 0
