"""``python -m flows.cli``: the ``mmcrs`` command line."""

from flows.cli import main

main()
