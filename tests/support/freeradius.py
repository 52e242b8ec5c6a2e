"""A private FreeRADIUS built from docs/radius.md, and eapol_test to talk EAP-TLS to it.

The documentation is the configuration: every fenced block of docs/radius.md preceded by a
``<!-- freeradius-test: ... -->`` marker is used as written, with only these values swapped
for the test's own (:meth:`Raddb.substitute`): Debian's ``/etc/freeradius/3.0`` (a copy in a
temporary folder), the RADIUS endpoint ``http://127.0.0.1:8081``, the signer's
``http://pki.example.com``, the CA folder ``/etc/acmegate/ca``, ``/var/lib/freeradius`` and
the token placeholder. Markers:

- ``file PATH``: the block is the file ``PATH`` of the configuration;
- ``shell [NAME]``: commands run with bash in order (unnamed ones while the configuration is
  built, named ones when the test asks); ``chown`` and ``install``'s owner options do nothing
  here, because this FreeRADIUS runs as the test's user, not ``freerad``;
- ``revocation ocsp|crl``, ``verify``: blocks pasted where the EAP module says so;
- ``eapol_test.conf``: the supplicant's configuration.

What the test adds on its own is what an installed server already has: its own ports (the
``default`` site's listeners), no ``inner-tunnel`` listener, no privilege drop, logs in the
temporary folder, and no ``reject_delay`` (it only slows the test down). The system's
FreeRADIUS service is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "radius.md"
SYSTEM_RADDB = Path(os.environ.get("ACMEGATE_TEST_RADDB", "/etc/freeradius/3.0"))
BINARIES = ("freeradius", "eapol_test")
REST_MODULE = Path("/usr/lib/freeradius/rlm_rest.so")

_MARKER = re.compile(r"<!-- freeradius-test: ([^>]*?) -->\n```[a-z]*\n(.*?)\n```", re.S)
_REVOCATION_PLACE = "\t\t#  REVOCATION: paste one of the blocks of section 2.3 here.\n"
_SHELL_PRELUDE = """
set -euo pipefail
chown() { :; }
install() {
    local args=()
    while [ $# -gt 0 ]; do
        case "$1" in -o|-g) shift 2 ;; *) args+=("$1"); shift ;; esac
    done
    command install "${args[@]}"
}
acmegate() { "$ACMEGATE_PYTHON" -m acmegate.cli.main "$@"; }
"""


def missing() -> list[str]:
    """What this machine lacks to run the FreeRADIUS tests (CI installs all of it)."""
    absent = [name for name in BINARIES if shutil.which(name) is None]
    if not REST_MODULE.exists():
        absent.append("freeradius-rest")
    if not (SYSTEM_RADDB / "radiusd.conf").exists():
        absent.append(str(SYSTEM_RADDB))
    return absent


@dataclass(frozen=True)
class Snippet:
    kind: str
    argument: str
    text: str


def doc_snippets(path: Path = DOC) -> list[Snippet]:
    """Every marked block of docs/radius.md, in order."""
    found = []
    for marker, text in _MARKER.findall(path.read_text(encoding="utf-8")):
        kind, _, argument = marker.strip().partition(" ")
        found.append(Snippet(kind, argument.strip(), text + "\n"))
    return found


@dataclass
class Raddb:
    """A copy of the system's FreeRADIUS configuration, configured as the docs say."""

    root: Path
    values: Mapping[str, str]
    snippets: list[Snippet] = field(default_factory=doc_snippets)

    def substitute(self, text: str) -> str:
        for documented, actual in self.values.items():
            text = text.replace(documented, actual)
        return text

    def snippet(self, kind: str, argument: str = "") -> str:
        matches = [s for s in self.snippets if s.kind == kind and s.argument == argument]
        assert len(matches) == 1, f"docs/radius.md: one `{kind} {argument}` block expected"
        return self.substitute(matches[0].text)

    def run_shell(self, script: str, env: Mapping[str, str] | None = None) -> str:
        done = subprocess.run(
            ["bash", "-c", _SHELL_PRELUDE + script],
            capture_output=True,
            text=True,
            env={**os.environ, "ACMEGATE_PYTHON": sys.executable, **(env or {})},
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"docs/radius.md shell block failed:\n{script}\n{done.stderr}"
        return done.stdout + done.stderr

    def build(self, port: int) -> None:
        """Copy the system configuration, apply every unnamed snippet, give it its port."""
        shutil.copytree(SYSTEM_RADDB, self.root, symlinks=True)
        for snippet in self.snippets:
            if snippet.kind == "file":
                target = self.root / snippet.argument
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self.substitute(snippet.text))
            elif snippet.kind == "shell" and not snippet.argument:
                self.run_shell(self.substitute(snippet.text))
        self._local(port)

    def eap_module(self, *, revocation: str | None, verify: bool) -> None:
        """The documented EAP module with the chosen revocation block, and, for ``verify``,
        the verify block instead of the check-eap-tls virtual server (docs §2.5)."""
        text = self.snippet("file", "mods-available/eap")
        assert _REVOCATION_PLACE in text, "docs/radius.md: the EAP module lost its placeholder"
        pasted = self.snippet("revocation", revocation) if revocation else ""
        if verify:
            pasted += self.snippet("verify")
            text = text.replace("\t\t#  Ask acmegate about the device (section 2.4).\n", "")
            text = text.replace("\t\tvirtual_server = check-eap-tls\n", "")
        (self.root / "mods-available" / "eap").write_text(text.replace(_REVOCATION_PLACE, pasted))

    def _local(self, port: int) -> None:
        conf = self.root / "radiusd.conf"
        text = conf.read_text()
        text = re.sub(r"(?m)^(\s*)(user|group) = ", r"\1#\2 = ", text)
        text = re.sub(r"(?m)^logdir = .*$", f"logdir = {self.root / 'log'}", text)
        text = re.sub(r"(?m)^run_dir = .*$", f"run_dir = {self.root / 'run'}", text)
        text = re.sub(r"(?m)^(\s*)reject_delay = \d+", r"\1reject_delay = 0", text)
        conf.write_text(text)
        (self.root / "log").mkdir(exist_ok=True)
        (self.root / "run").mkdir(exist_ok=True)
        (self.root / "sites-enabled" / "inner-tunnel").unlink(missing_ok=True)
        default = self.root / "sites-available" / "default"
        default.write_text(_only_listener(default.read_text(), port))


def _only_listener(site: str, port: int) -> str:
    """The ``default`` site with its listen sections replaced by one on 127.0.0.1:port."""
    kept: list[str] = []
    depth = 0
    skipping = False
    for line in site.split("\n"):
        code = line.split("#", 1)[0]
        if not skipping and re.match(r"^listen\s*\{", code):
            skipping, depth = True, 0
        if skipping:
            depth += code.count("{") - code.count("}")
            if depth <= 0 and "}" in code:
                skipping = False
            continue
        kept.append(line)
    listener = f"listen {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {port}\n}}\n"
    return "\n".join(kept).replace("server default {\n", "server default {\n" + listener, 1)


@dataclass
class Running:
    """A ``freeradius -X`` process and everything it printed."""

    process: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def mark(self) -> int:
        """Where the log is now (to look at one exchange's lines afterwards)."""
        return len(self.lines)

    def since(self, mark: int) -> str:
        return "\n".join(self.lines[mark:])


async def _pump(running: Running, ready: asyncio.Event) -> None:
    assert running.process.stdout is not None
    async for raw in running.process.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        running.lines.append(line)
        if "Ready to process requests" in line:
            ready.set()


@contextlib.asynccontextmanager
async def freeradius(raddb: Raddb, port: int, name: str) -> AsyncIterator[Running]:
    """``freeradius -X -d <copy>`` until the block ends; fails with its output if it does not
    come up. With ``ACMEGATE_FREERADIUS_LOG=DIR`` its output is kept as ``DIR/<name>.log``."""
    process = await asyncio.create_subprocess_exec(
        "freeradius", "-X", "-d", str(raddb.root),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    running = Running(process, port)
    ready = asyncio.Event()
    pump = asyncio.create_task(_pump(running, ready))
    try:
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, pump}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            raise AssertionError("FreeRADIUS did not start:\n" + "\n".join(running.lines[-40:]))
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(pump, 5)
        _keep(name, running)


def _keep(name: str, running: Running) -> None:
    folder = os.environ.get("ACMEGATE_FREERADIUS_LOG")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.log").write_text(running.output)


@dataclass(frozen=True)
class Exchange:
    """One eapol_test run: whether it ended in SUCCESS, its output, FreeRADIUS's lines."""

    accepted: bool
    supplicant: str
    server: str


async def eap_tls(running: Running, conf: Path) -> Exchange:
    """One EAP-TLS authentication with eapol_test against ``running``."""
    mark = running.mark()
    process = await asyncio.create_subprocess_exec(
        "eapol_test", "-c", str(conf), "-a", "127.0.0.1", "-p", str(running.port),
        "-s", "testing123", "-t", "15",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    await asyncio.sleep(0.1)  # the server's last lines of the exchange
    text = out.decode(errors="replace")
    return Exchange(process.returncode == 0 and "SUCCESS" in text, text, running.since(mark))
