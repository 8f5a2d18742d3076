"""Every command the README and docs/ show is run here, exactly as written.

A fenced block tagged `sh` is a command to type; `text` is a synopsis, a tree, sample output
or a benchmark's full invocation (minutes of work, run by `make bench`, not by the tests); every other tag names a file format (yaml, toml, python, sql …). A bare fence is an
error, so each block says which it is. Per page, the `sh` blocks run in order as one bash script
(`set -euo pipefail`) in a fresh folder, with the venv's `bin` first on PATH.

Directives are HTML comments, invisible on a rendered page:

- `<!-- docs-test: setup="…" -->` — a shell precondition run before the page's first block (a
  project the page assumes exists). `needs=postgres` creates the role `stackyard` and a fresh
  database named by `pg-database=NAME` first, serialised with other pages by a lock, and drops
  the database and the roles the project created afterwards. `cwd=repo` runs the page in a
  fresh copy of the repository (as a clone has it, sharing this checkout's .venv): README's
  `make demo`, the benchmark commands. `needs=api` is a hint that the setup starts the local
  stand-in API (`python "$DOCS_REPO/tests/ingest/api_server.py" --port …  &`), `needs=nats`
  that it fills a stream (`tests/ingest/jetstream.py`); every page with `needs=` runs alone,
  so fixed ports and names do not collide.
- `<!-- docs-test: exit=N -->` before a block: its last command is documented to exit N (the
  commands before it must succeed).
- `<!-- docs-test: covered-by=PATH -->` before a block: that file runs these commands (e.g.
  `.ci/run` runs `make test`); the test checks that every command of the block is in it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PG_DSN, unavailable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)\s*$")
DIRECTIVE = re.compile(r"<!--\s*docs-test:(.*?)-->", re.S)
RUNNABLE = "sh"
PAGE_KEYS = {"setup", "needs", "pg-database", "cwd"}
BLOCK_KEYS = {"exit", "covered-by"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    exit: int = 0
    covered_by: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def split_last(self) -> tuple[str, str]:
        """The block before its last command, and the last command (continuations kept)."""
        lines = self.text.rstrip("\n").split("\n")
        end = len(lines)
        while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        start = end - 1
        while start > 0 and lines[start - 1].rstrip().endswith("\\"):
            start -= 1
        return "\n".join(lines[:start]), "\n".join(lines[start:end])

    def commands(self) -> list[str]:
        """The block's commands: continuation lines joined, comments and blanks dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        out = []
        for raw in joined.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            out.append(re.sub(r"\s+#.*$", "", line).strip())
        return out


@dataclass(frozen=True)
class Page:
    path: Path
    blocks: list[Block]
    options: dict[str, str] = field(default_factory=dict)

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.lang == RUNNABLE and b.covered_by is None]


def _directive(text: str, where: str) -> dict[str, str]:
    options = {}
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep or key not in PAGE_KEYS | BLOCK_KEYS:
            raise ValueError(f"{where}: unknown docs-test directive {token!r}")
        options[key] = value
    return options


def parse(path: Path) -> Page:
    """Split a Markdown page into fenced blocks and docs-test directives."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    page_options: dict[str, str] = {}
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        comment = DIRECTIVE.search(lines[i])
        if comment:
            options = _directive(comment.group(1), f"{path.name}:{i + 1}")
            page_options.update({k: v for k, v in options.items() if k in PAGE_KEYS})
            pending.update({k: v for k, v in options.items() if k in BLOCK_KEYS})
        fence = FENCE.match(lines[i])
        if fence:
            indent, ticks, lang = fence.groups()
            start = i
            body = []
            i += 1
            while i < len(lines) and not re.match(rf"^\s*{ticks}\s*$", lines[i]):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            blocks.append(
                Block(
                    path,
                    start + 1,
                    lang,
                    "\n".join(body) + "\n",
                    exit=int(pending.get("exit", "0")),
                    covered_by=pending.get("covered-by"),
                )
            )
            pending = {}
        i += 1
    return Page(path, blocks, page_options)


def test_every_block_says_what_it_is() -> None:
    bare = [b.where for p in PAGES for b in parse(p).blocks if not b.lang]
    assert not bare, (
        "fenced blocks without a tag (use sh for commands, text for synopses and output, "
        "or the file format):\n" + "\n".join(bare)
    )


def test_blocks_expected_to_fail_end_in_a_command() -> None:
    bad = [
        b.where
        for p in PAGES
        for b in parse(p).blocks
        if b.exit and (b.lang != RUNNABLE or not b.commands() or "<<" in b.split_last()[1])
    ]
    assert not bad, "an exit=N block must be an sh block ending in a plain command:\n" + "\n".join(
        bad
    )


def test_inline_commands_put_debug_before_the_command() -> None:
    """`--debug` is an option of `stackyard` itself: `stackyard run --debug` exits 2."""
    after = re.compile(r"`stackyard\s+[a-z][^`]*\s--debug\b[^`]*`")
    bad = [
        f"{page.relative_to(ROOT)}: {m.group(0)}"
        for page in PAGES
        for m in after.finditer(page.read_text(encoding="utf-8"))
    ]
    assert not bad, "write `stackyard --debug COMMAND`:\n" + "\n".join(bad)


def test_covered_commands_are_run_where_they_say() -> None:
    missing = []
    for page in PAGES:
        for block in parse(page).blocks:
            if block.covered_by is None:
                continue
            runner = ROOT / block.covered_by
            text = runner.read_text(encoding="utf-8") if runner.is_file() else ""
            missing += [
                f"{block.where}: {cmd!r} not in {block.covered_by}"
                for cmd in block.commands()
                if cmd not in text
            ]
    assert not missing, "\n".join(missing)


def script(page: Page) -> str:
    """One bash script: the page's setup, then each block, each announced by its place."""
    # Servers a setup starts in the background end with the page.
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    if "setup" in page.options:
        parts.append(f"echo '### setup'\n{page.options['setup']}")
    for block in page.runnable:
        parts.append(f"echo {shlex.quote('### ' + block.where)}")
        if block.exit:
            before, last = block.split_last()
            parts.append(
                f"{before}\nset +e\n{last}\n__rc=$?\nset -e\n"
                f'if [ "$__rc" -ne {block.exit} ]; then echo "### {block.where}: exit $__rc, '
                f'the docs say {block.exit}"; exit 97; fi'
            )
        else:
            parts.append(block.text.rstrip())
    return "\n".join(parts) + "\n"


@contextmanager
def postgres_for(page: Page) -> Iterator[None]:
    """A fresh database (and the login role the example targets use) for one page at a time."""
    import psycopg

    database = page.options.get("pg-database")
    assert database, f"{page.path.name}: needs=postgres wants pg-database=NAME"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", f"{PG_DSN}: {exc}")
    lock = open("/tmp/stackyard-docs-postgres.lock", "w")  # noqa: SIM115 - held for the page
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        with admin:
            _drop(admin, database)
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'stackyard'").fetchone():
                admin.execute("CREATE ROLE stackyard LOGIN")
            # docs/access-control.md: the applying user is a superuser or owns the database
            # with CREATEROLE; the pages use the second, the least privilege that works.
            admin.execute("ALTER ROLE stackyard LOGIN NOSUPERUSER CREATEROLE")
            admin.execute(f'CREATE DATABASE "{database}" OWNER stackyard')
            try:
                yield
            finally:
                _drop(admin, database)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _drop(admin: object, database: str) -> None:
    """Drop the page's database and every role the project created (tagged in its comment)."""
    execute = admin.execute  # type: ignore[attr-defined]
    execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    roles = execute(
        "SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE %s",
        (f"[stackyard:{database}]%",),
    ).fetchall()
    for (role,) in roles:
        execute(f'DROP ROLE IF EXISTS "{role}"')


RUN_PAGES = [p for p in PAGES if parse(p).runnable]


def worker_unit(nodeid: str) -> str | None:
    """The unit of work `make test` hands a worker for a page's test (tests/conftest.py): the
    page alone, or, for the pages that need servers, all of them (they run one at a time
    anyway, and a worker waiting for the lock would sit idle); None for any other test."""
    prefix = f"{Path(__file__).relative_to(ROOT)}::{test_page_runs_as_written.__name__}["
    if not nodeid.startswith(prefix):
        return None
    page = parse(ROOT / nodeid[len(prefix) : -1])
    return "docs pages needing servers" if page.options.get("needs") else nodeid


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_as_written(path: Path, tmp_path: Path) -> None:
    page = parse(path)
    needs = set(filter(None, page.options.get("needs", "").split(",")))
    if "postgres" in needs:
        pytest.importorskip("psycopg")
    workdir = tmp_path / "work"
    if page.options.get("cwd") == "repo":
        fresh_copy(ROOT, workdir)
    workdir.mkdir(exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "COLUMNS": "120",
        "DOCS_REPO": str(ROOT),  # setups start the repository's local stand-in servers
    }
    (tmp_path / "page.sh").write_text(script(page), encoding="utf-8")
    runner = postgres_for(page) if "postgres" in needs else _nothing()
    with _page_lock(bool(needs)), runner:
        done = subprocess.run(
            ["bash", str(tmp_path / "page.sh")],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    assert done.returncode == 0, (
        f"{path.relative_to(ROOT)} as written failed (exit {done.returncode}); the last block "
        f"announced is the one that failed:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _page_lock(held: bool) -> Iterator[None]:
    """Pages that need servers take fixed ports and names: one such page at a time."""
    if not held:
        yield
        return
    with open("/tmp/stackyard-docs-servers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fresh_copy(root: Path, to: Path) -> None:
    """The repository as a clone would have it, using this checkout's installed .venv."""
    import shutil

    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    # The copy's .venv links to this checkout's, entry by entry, with an install stamp of its
    # own: `make` in the copy then never reinstalls (which would point the shared venv's
    # editable install at the copy).
    venv = to / ".venv"
    venv.mkdir()
    for entry in (root / ".venv").iterdir():
        if entry.name != ".installed":
            (venv / entry.name).symlink_to(entry)
    (venv / ".installed").touch()
