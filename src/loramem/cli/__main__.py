"""`python -m loramem.cli`, as the tests run it in a subprocess."""

from loramem.cli import main

main()
