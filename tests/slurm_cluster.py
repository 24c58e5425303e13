"""A one-node SLURM cluster on this machine for tests/test_slurm.py: munged, slurmctld and slurmd
started from a config written to a temp dir, and stopped again.

Needs Debian's slurm-wlm and munge (`apt-get install slurm-wlm munge`) and root, as slurmd runs
the jobs. `missing()` says what is missing, so the test can say why it skips.
"""
import os
import random
import shutil
import signal
import subprocess
import time

from ports import free_port  # tests/

DAEMONS = ('munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'scancel', 'sinfo')
# localhost resolves everywhere: JAX's SLURM detection makes the first node of the step its
# coordinator's host name.
NODE = 'localhost'


def missing() -> str | None:
  """Why a local cluster cannot start here, or None."""
  absent = [d for d in DAEMONS if not shutil.which(d, path=os.environ.get('PATH', '') +
                                                    ':/usr/sbin:/sbin')]
  if absent:
    return (f'slurm not installed (no {", ".join(absent)}): as root, '
            f'apt-get install -y slurm-wlm munge')
  if os.geteuid() != 0:
    return 'slurmd must run as root to start jobs; run the tests as root'
  return None



def _config(root, munge_socket) -> str:
  cpus = max(2, os.cpu_count() or 1)  # two tasks even on one core (config_overrides)
  return '\n'.join([
      'ClusterName=isxtest',
      # JAX's coordinator port is 61440 + job id % 4096: a random first id keeps two such
      # clusters on one machine (concurrent test runs) off each other's ports.
      f'FirstJobId={random.randrange(1, 1 << 20)}',
      f'SlurmctldHost={NODE}(127.0.0.1)',
      f'SlurmctldPort={free_port()}', f'SlurmdPort={free_port()}',
      'SlurmUser=root', 'SlurmdUser=root',
      'AuthType=auth/munge', 'CredType=cred/munge', f'AuthInfo=socket={munge_socket}',
      f'StateSaveLocation={root}/state', f'SlurmdSpoolDir={root}/spool',
      f'SlurmctldPidFile={root}/slurmctld.pid', f'SlurmdPidFile={root}/slurmd.pid',
      f'SlurmctldLogFile={root}/slurmctld.log', f'SlurmdLogFile={root}/slurmd.log',
      'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none', 'AccountingStorageType=accounting_storage/none',
      'SelectType=select/cons_tres', 'SelectTypeParameters=CR_CPU', 'MpiDefault=none',
      'SlurmdParameters=config_overrides', 'ReturnToService=2', 'KillWait=30',
      f'NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN',
      'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP', ''])


class Cluster:
  """Started by start(), stopped by stop(); env holds SLURM_CONF for the client commands."""

  def __init__(self, root):
    self.root = str(root)
    self.socket = os.path.join(self.root, 'munge.sock')
    self.conf = os.path.join(self.root, 'slurm.conf')
    self.env = {**os.environ, 'SLURM_CONF': self.conf,
                'PATH': os.environ.get('PATH', '') + ':/usr/sbin:/sbin'}

  def _run(self, *args, **kw):
    return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=60,
                          check=True, **kw)

  def start(self):
    for d in ('state', 'spool'):
      os.makedirs(os.path.join(self.root, d))
    os.chmod(self.root, 0o755)  # munged wants its socket's folder not writable by others
    key = os.path.join(self.root, 'munge.key')
    self._run('mungekey', '--create', f'--keyfile={key}')
    self._run('munged', '--force', f'--socket={self.socket}', f'--key-file={key}',
              f'--pid-file={self.root}/munged.pid', f'--log-file={self.root}/munged.log',
              f'--seed-file={self.root}/munged.seed')
    with open(self.conf, 'w') as f:
      f.write(_config(self.root, self.socket))
    self._run('slurmctld', '-f', self.conf)
    self._run('slurmd', '-f', self.conf, '-N', NODE)
    end = time.time() + 60
    while time.time() < end:
      state = subprocess.run(['sinfo', '-h', '-o', '%T'], env=self.env, capture_output=True,
                             text=True).stdout.strip()
      if state == 'idle':
        return
      time.sleep(0.5)
    raise RuntimeError(f'the node did not come up (state {state!r}):\n{self.logs()}')

  def logs(self) -> str:
    out = []
    for name in ('slurmctld.log', 'slurmd.log', 'munged.log'):
      path = os.path.join(self.root, name)
      if os.path.exists(path):
        out.append(f'--- {name}\n' + ''.join(open(path).readlines()[-30:]))
    return '\n'.join(out)

  def job(self, job_id: str) -> dict:
    """scontrol's fields for the job (JobState, ExitCode, ...)."""
    text = self._run('scontrol', 'show', 'job', '-o', job_id).stdout
    return dict(f.split('=', 1) for f in text.split() if '=' in f)

  def wait(self, job_id: str, timeout=600) -> dict:
    end = time.time() + timeout
    while time.time() < end:
      job = self.job(job_id)
      if job['JobState'] not in ('PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING'):
        return job
      time.sleep(0.5)
    raise TimeoutError(f'job {job_id} still {job["JobState"]} after {timeout} s')

  def cancel(self, job_id: str):
    self._run('scancel', job_id)

  def stop(self):
    subprocess.run(['scancel', '--full', '--user', 'root'], env=self.env, capture_output=True)
    for pid_file in ('slurmd.pid', 'slurmctld.pid', 'munged.pid'):
      path = os.path.join(self.root, pid_file)
      try:
        pid = int(open(path).read())
      except (OSError, ValueError):
        continue
      try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):  # up to 10 s each: the next one's socket must still be there
          os.kill(pid, 0)
          time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
