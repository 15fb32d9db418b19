"""The benchmarks' tests run on the server's test fixtures (tests/conftest.py): the test database,
committed and reached over TCP as the bench's processes reach it, and a private redis-server.

pytest looks for fixtures in the conftest.py files above a test only, so the ones these tests use
are imported here; pytest_plugins, the other way, belongs in a conftest at the rootdir.
"""

from tests.conftest import live_db, private_redis  # noqa: F401 - the fixtures
