"""python -m tools.cassandra [nodes]: Apache Cassandra in the foreground until Ctrl-C."""

import sys

from tools.cassandra.launcher import main

sys.exit(main())
