"""``python -m jaxgru.demo [options]``: the same command as ``python -m jaxgru demo [options]``."""

import sys

from jaxgru.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
