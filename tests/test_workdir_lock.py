"""The workdir lock: one training per workdir, and a lock whose holder is gone is taken over."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from isx import workdir_lock
from isx.workdir_lock import LOCK_FILE, WorkdirBusyError, WorkdirLock


def _write_lock(workdir, **holder):
  path = workdir / LOCK_FILE
  path.write_text(json.dumps({'started': time.time(), **holder}))
  return path


def _dead_pid():
  p = subprocess.Popen([sys.executable, '-c', 'pass'])
  p.wait()
  return p.pid


def test_the_lock_names_its_holder_and_goes_away_on_exit(tmp_path):
  with WorkdirLock(str(tmp_path)):
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder['host'] == socket.gethostname() and holder['pid'] == os.getpid()
  assert not (tmp_path / LOCK_FILE).exists()


def test_a_second_holder_is_refused_in_one_line_and_the_first_keeps_its_lock(tmp_path):
  with WorkdirLock(str(tmp_path)):
    with pytest.raises(WorkdirBusyError) as e:
      WorkdirLock(str(tmp_path)).acquire()
    assert f'is being trained by pid {os.getpid()}' in str(e.value)
    assert 'choose another --workdir' in str(e.value) and '\n' not in str(e.value)
    assert (tmp_path / LOCK_FILE).exists()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
  with pytest.raises(RuntimeError):
    with WorkdirLock(str(tmp_path)):
      raise RuntimeError('training failed')
  assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
  _write_lock(tmp_path, host=socket.gethostname(), pid=_dead_pid())
  with WorkdirLock(str(tmp_path)):
    assert json.loads((tmp_path / LOCK_FILE).read_text())['pid'] == os.getpid()


def test_another_hosts_lock_holds_until_it_goes_stale(tmp_path):
  path = _write_lock(tmp_path, host='some-other-host', pid=1)
  with pytest.raises(WorkdirBusyError, match='on some-other-host'):
    WorkdirLock(str(tmp_path)).acquire()
  old = time.time() - workdir_lock.STALE_S - 1
  os.utime(path, (old, old))  # its holder stopped refreshing it
  with WorkdirLock(str(tmp_path)):
    assert json.loads(path.read_text())['host'] == socket.gethostname()


def test_the_holder_refreshes_the_lock(tmp_path, monkeypatch):
  monkeypatch.setattr(workdir_lock, 'REFRESH_S', 0.05)
  with WorkdirLock(str(tmp_path)):
    path = tmp_path / LOCK_FILE
    old = time.time() - 1000
    os.utime(path, (old, old))
    deadline = time.time() + 10
    while os.path.getmtime(path) < old + 1 and time.time() < deadline:
      time.sleep(0.05)
    assert os.path.getmtime(path) > old + 1


@pytest.mark.parametrize('content', ['', '{"host": "x', '[1, 2]'])
def test_an_empty_or_unreadable_lock_of_a_killed_process_is_taken_over(tmp_path, content):
  """An older isx created the lock and then wrote its name: a kill between the two left an
  empty lock. Today's lock is linked into place whole, so one without a holder has none."""
  (tmp_path / LOCK_FILE).write_text(content)
  with WorkdirLock(str(tmp_path)):
    assert json.loads((tmp_path / LOCK_FILE).read_text())['pid'] == os.getpid()
  assert os.listdir(tmp_path) == []  # no lock, and no file it was written to


def test_a_lock_is_never_seen_empty_while_it_is_taken(tmp_path):
  """Many takers at once: each sees either no lock or a complete one, never an empty one."""
  code = ('import sys, time; from isx.workdir_lock import WorkdirLock, WorkdirBusyError\n'
          'try:\n  l = WorkdirLock(sys.argv[1]); l.acquire(); time.sleep(1.0); l.release()\n'
          'except WorkdirBusyError as e:\n  assert "pid None" not in str(e), e; print("busy")\n')
  procs = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(6)]
  results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
  assert all(rc == 0 for _, _, rc in results), results
  assert sum(out.strip() == 'busy' for out, _, _ in results) >= 1  # they overlapped
