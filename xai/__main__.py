"""``python -m xai``."""

from xai.cli import main

main()
