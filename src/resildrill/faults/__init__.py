"""Fault backends: one module per fault kind, each registered under ``resildrill.faults``.

- ``process``  faults/process.py   kill, terminate, freeze a local service process
- ``network``  faults/network.py   toxics through a Toxiproxy API (issue 4)
- ``docker``   faults/docker.py    containers through the Docker engine (issue 5)
- ``heat``     faults/heat.py      a heatwave composed of the others (issue 6)
"""
