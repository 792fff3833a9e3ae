"""The full stack in real containers on this machine: see tools/containers/run.sh and docs/containers.md."""
