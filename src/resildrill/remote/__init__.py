"""Hosts of the staging estate, reached over SSH: the guard on each host and the runner's side.

    ssh.py       the transport: verified host keys, key authentication, argv-only commands
    guard.py     the program run on the host (stdlib only, copied and hash-checked): applies,
                 journals and, when the runner goes quiet, reverts faults by itself
    session.py   the runner's live channel to a guard: requests by id, heartbeats, clock offset
    hostops.py   what fault backends do on a host, and undo from a recipe alone
    hooks.py     run-scoped hooks (hand-off at the end, halt on lost contact)

Fault kinds that use it: ``process`` on a service with ``host:`` (faults/process_remote.py)
and ``resource`` (faults/resource.py).
"""
