"""``python -m flows.cli``: the ``mmcrs`` command line."""

from flows.cli import main

if __name__ == "__main__":
    main()
