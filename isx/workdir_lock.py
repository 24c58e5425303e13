"""One writer per workdir: a training holds WORKDIR/.isx-lock while it runs.

The lock is a file that names its holder (host, pid), written whole beside it and linked into place
(a hard link fails when the lock exists), so a lock is never seen half-written. A second training
on the workdir is refused in one line naming the holder. A lock whose holder is gone is taken over:
on the same host when its pid no longer runs; from another host (a shared filesystem) when the
holder stopped refreshing it for STALE_S seconds. Remote workdirs (gs://...) have no hard links and are
not locked. isx.eval takes no lock: it reads a finished checkpoint.
"""
import json
import os
import socket
import threading
import time

from isx import errors

LOCK_FILE = '.isx-lock'
REFRESH_S = 60
STALE_S = 600


class WorkdirBusyError(errors.UserError, ValueError):
  """Another live process is training this workdir."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process: it exists
    return True
  return True


class WorkdirLock:
  """`with WorkdirLock(workdir):` holds the workdir's lock for the block, or raises
  WorkdirBusyError before anything is written."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._stop = threading.Event()
    self._thread = None

  def _holder(self):
    """(holder dict, seconds since it was refreshed), or None when the lock is gone."""
    try:
      with open(self.path) as f:
        text = f.read()
      age = time.time() - os.path.getmtime(self.path)
    except FileNotFoundError:
      return None
    try:
      holder = json.loads(text)
    except json.JSONDecodeError:  # damaged: a complete lock is linked into place whole
      holder = None
    return holder if isinstance(holder, dict) else {}, age

  def _gone(self, holder: dict, age: float) -> bool:
    if not holder:  # empty or unreadable: no holder to wait for
      return True
    if holder.get('host') == socket.gethostname() and isinstance(holder.get('pid'), int):
      return not _alive(holder['pid'])
    return age > STALE_S

  def acquire(self):
    me = {'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.time()}
    mine = f'{self.path}.{me["host"]}.{me["pid"]}'
    with open(mine, 'w') as f:
      json.dump(me, f)
    try:
      self._link(mine)
    finally:
      os.remove(mine)
    self._thread = threading.Thread(target=self._refresh, daemon=True)
    self._thread.start()

  def _link(self, mine):
    while True:
      try:
        os.link(mine, self.path)
        return
      except FileExistsError:
        found = self._holder()
        if found is None:
          continue  # released meanwhile
        holder, age = found
        if self._gone(holder, age):
          os.remove(self.path)
          continue
        since = time.strftime('%Y-%m-%d %H:%M', time.localtime(holder.get('started', 0)))
        raise WorkdirBusyError(
            f'{os.path.dirname(self.path)} is being trained by pid {holder.get("pid")} on '
            f'{holder.get("host")} (since {since}); wait for it or stop it, or choose another '
            f'--workdir') from None

  def _refresh(self):  # so that another host sees the holder alive
    while not self._stop.wait(REFRESH_S):
      try:
        os.utime(self.path)
      except OSError:
        return

  def release(self):
    self._stop.set()
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()
