"""``python -m examples.shop``: run the tea shop against ``payfront dev`` (see README.md here)."""

from examples.shop.app import main

main()
