"""``python -m resildrill.proxy``: the embedded Toxiproxy-compatible server."""

from resildrill.proxy.service import main

main()
