"""Ports for the servers that tests start (JAX coordinators, slurmctld, slurmd).

Binding port 0 and closing the socket hands out a port from the kernel's ephemeral range, free
only until someone takes it: another xdist worker asking the same way, or any outgoing
connection, whose local port comes from that range. JAX's coordinator (gRPC) binds with
SO_REUSEPORT, so a second coordinator on a taken port binds without error and the kernel shares
the incoming connections between the two: processes join the other test's cluster, and the rest
wait for their own until a deadline (`tests/test_launch.py` hung that way). So ports here come
from below the ephemeral range, where no outgoing connection lands, in a block of its own for
each xdist worker of each test session, and each is checked free with a plain bind."""
import itertools
import os
import socket

LOW, HIGH = 20000, 32000  # below Linux's default ip_local_port_range (32768-60999)
BLOCK = 100
_counter = itertools.count()


def _block_start() -> int:
  worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
  index = int(worker[2:]) if worker[2:].isdigit() else 0
  session = os.getppid() if 'PYTEST_XDIST_WORKER' in os.environ else os.getpid()
  blocks = (HIGH - LOW) // BLOCK
  return LOW + ((session * 8 + index) % blocks) * BLOCK


def free_port() -> int:
  """A port of this worker's block that nothing listens on or is connected from right now."""
  start = _block_start()
  for _ in range(BLOCK):
    port = start + next(_counter) % BLOCK
    with socket.socket() as s:  # no SO_REUSEADDR/SO_REUSEPORT: fails on any use of the port
      try:
        s.bind(('127.0.0.1', port))
      except OSError:
        continue
    return port
  raise RuntimeError(f'no free port in {start}-{start + BLOCK - 1}')
