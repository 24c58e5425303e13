"""benchmarks/profile_step.py: self time by kind of op, on the worker threads only."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location('profile_step',
                                               ROOT / 'benchmarks' / 'profile_step.py')
profile_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_step)


def test_self_time_is_duration_less_children_on_worker_threads():
  meta = lambda tid, name: {'ph': 'M', 'name': 'thread_name', 'pid': 1, 'tid': tid,
                            'args': {'name': name}}
  ev = lambda tid, name, ts, dur: {'ph': 'X', 'pid': 1, 'tid': tid, 'name': name, 'ts': ts,
                                   'dur': dur}
  trace = {'traceEvents': [
      meta(1, 'tf_XLAEigen/1'), meta(2, 'tf_XLAPjRtCpuClient/2'), meta(3, 'main.py'),
      ev(1, 'ThunkExecutor::Execute', 0, 100), ev(1, 'transpose_copy_fusion.3', 10, 30),
      ev(1, 'Rendezvous', 50, 20), ev(1, 'wrapped_reduce-window.7', 80, 10),
      ev(2, 'ThunkExecutor::Execute (wait for completion)', 0, 100),  # blocked, not work
      ev(2, 'convolution.2', 100, 5), ev(3, 'transpose_copy_fusion.3', 0, 1000)]}
  totals, span = profile_step.self_times(trace)
  assert totals == {'executor bookkeeping': 40,
                    'transposes and copies (layouts for the weight-gradient convolutions)': 30,
                    'waiting (rendezvous, all-reduce peers)': 20,
                    'reductions (conv bias gradients, norms)': 10,
                    'convolution (the part with a trace event)': 5}
  assert span == [0, 105]
