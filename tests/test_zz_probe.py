import os, time, pytest
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('probe')]
@pytest.fixture(scope='module')
def fx():
  time.sleep(2)
  return os.getpid()
def test_a(fx, request): open('/tmp/probe/ids','a').write(f'{request.node.nodeid} {request.config.getvalue("loadgroup")} {request.config.getvalue("dist")}\n')
def test_b(fx): print('b', fx)
def test_c(fx): print('c', fx)
