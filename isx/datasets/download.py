"""Fetches files over HTTP(S) with a checksum, and lets one process at a time prepare a dataset.

A file is streamed to FILE.part, its size and sha256 checked, then renamed, so a partial or
corrupt download is never taken for a complete one; a failed one is deleted and the next run
starts it again. The lock is a file created with O_EXCL in the data_dir: one process (of all
the hosts that share the data_dir) prepares, the others wait; a lock whose holder stopped
touching it for STALE_S seconds (killed) is taken over.
"""
import dataclasses
import hashlib
import http.client
import os
import socket
import time
import urllib.request

import tqdm

from isx import errors

TIMEOUT_S = 10  # connect and per-read timeout: offline fails in about this long
STALE_S = 120


class DownloadError(errors.UserError, OSError):
  """A download that failed; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
  url: str
  size: int
  sha256: str
  filename: str


def fetch(remote: RemoteFile, folder: str, offline_hint: str, on_progress=lambda: None) -> str:
  """Downloads remote into folder and returns its path, once its size and sha256 match."""
  dest = os.path.join(folder, remote.filename)
  part = dest + '.part'
  digest = hashlib.sha256()
  try:
    with urllib.request.urlopen(remote.url, timeout=TIMEOUT_S) as response, \
        open(part, 'wb') as f, tqdm.tqdm(total=remote.size, unit='B', unit_scale=True,
                                         unit_divisor=1024, desc=remote.filename) as bar:
      while chunk := response.read(1 << 20):
        f.write(chunk)
        digest.update(chunk)
        bar.update(len(chunk))
        on_progress()
  except (OSError, http.client.HTTPException) as e:  # refused, DNS, timeout, cut mid-file
    _remove(part)
    reason = getattr(e, 'reason', None) or e
    raise DownloadError(f'cannot download {remote.url} ({reason}); {offline_hint}') from None
  size = os.path.getsize(part)
  if size != remote.size or digest.hexdigest() != remote.sha256:
    _remove(part)
    if size < remote.size:  # the server closed the connection early
      raise DownloadError(f'cannot download {remote.url}: got {size} of {remote.size} bytes '
                          f'(connection cut); the part was deleted, run again')
    raise DownloadError(
        f'{remote.url} failed its checksum ({size} bytes, sha256 {digest.hexdigest()[:12]}...; '
        f'expected {remote.size} bytes, {remote.sha256[:12]}...); it was deleted. Run again, '
        f'or if it persists, the source changed: prepare the dataset by hand (docs/data.md)')
  os.replace(part, dest)
  return dest


def _remove(path):
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


class Lock:
  """`with Lock(path) as held:` held is True for the one process that got the lock; the others
  return once the holder let go (their caller then finds the dataset, or tries itself)."""

  def __init__(self, path: str, poll_s: float = 1.0):
    self.path, self.poll_s, self.held = path, poll_s, False

  def touch(self):
    os.utime(self.path)

  def __enter__(self) -> bool:
    while True:
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        if self._stale():
          _remove(self.path)
          continue
        print(f'waiting for another process preparing the data ({self.path})', flush=True)
        while os.path.exists(self.path) and not self._stale():
          time.sleep(self.poll_s)
        return False
      with os.fdopen(fd, 'w') as f:
        f.write(f'{socket.gethostname()} {os.getpid()}\n')
      self.held = True
      return True

  def _stale(self) -> bool:
    try:
      return time.time() - os.path.getmtime(self.path) > STALE_S
    except FileNotFoundError:
      return False

  def __exit__(self, *exc):
    if self.held:
      _remove(self.path)
