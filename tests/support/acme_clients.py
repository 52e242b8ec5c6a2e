"""What the real-client tests (tests/e2e/clients) share: the ACME server under test (acmegate
or pebble) as one shape, running a client binary without blocking the event loop (the
in-process gateway answers on it), and the relying party's checks of what a client wrote.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.challtestsrv import ChallTestSrv

HOOKS = Path(__file__).resolve().parent.parent / "e2e" / "clients" / "hooks"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass
class AcmeServer:
    """An ACME server the clients are judged against, with what a client needs to reach it."""

    name: str  # "acmegate" or "pebble": the test id
    directory_url: str
    root_pem: Path  # the trust anchor of the certificates it issues
    http_port: int  # where it fetches http-01 answers (the client listens there)
    tls_port: int  # where it connects for tls-alpn-01
    responder: ChallTestSrv  # its DNS server: TXT records for dns-01 go here
    tls_ca: Path | None  # the CA of its HTTPS directory, None for plain HTTP
    revoked: Callable[[x509.Certificate, Path], Awaitable[bool]]

    def client_env(self) -> dict[str, str]:
        """Environment every client runs with: trust in the directory's TLS certificate (each
        client's own variable) and the responder's management URL for the hook scripts."""
        env = {"CHALLTESTSRV": f"http://127.0.0.1:{self.responder.management_port}"}
        if self.tls_ca is not None:
            ca = str(self.tls_ca)
            env |= {
                "REQUESTS_CA_BUNDLE": ca,  # certbot, the acme library
                "LEGO_CA_CERTIFICATES": ca,
                "CURL_CA_BUNDLE": ca,  # dehydrated (curl)
            }
        return env


@dataclass
class Run:
    returncode: int
    output: str


async def run(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout: float = 60
) -> Run:
    """Run a client to its end, stdout and stderr together."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, **env},
        cwd=cwd,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        raise AssertionError(f"{args[0]} timed out:\n{out.decode(errors='replace')}") from None
    return Run(process.returncode or 0, out.decode(errors="replace"))


async def succeeds(args: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None) -> str:
    done = await run(args, env, cwd=cwd)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.output}"
    return done.output


def certificates(pem_text: str) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(p.encode()) for p in _PEM.findall(pem_text)]


async def verify_server_chain(root: Path, chain_file: Path, name: str) -> x509.Certificate:
    """What a TLS client of the server would check: ``openssl verify -purpose sslserver`` of
    the leaf in ``chain_file`` (its intermediates after it) against ``root``, and that the
    leaf names ``name``. Returns the leaf."""
    leaf, leaf_path, untrusted = _split(chain_file)
    args = ["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(root)]
    args += ["-untrusted", str(untrusted), "-verify_hostname", name, str(leaf_path)]
    done = await run(args, {})
    assert done.output.strip() == f"{leaf_path}: OK", done.output
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [name]
    return leaf


def _split(chain_file: Path) -> tuple[x509.Certificate, Path, Path]:
    """The leaf of a PEM chain file, and it and the rest (its intermediates) as two files."""
    chain = _PEM.findall(chain_file.read_text())
    assert chain, f"no certificate in {chain_file}"
    leaf, untrusted = chain_file.parent / "verify-leaf.pem", chain_file.parent / "untrusted.pem"
    leaf.write_text(chain[0] + "\n")
    untrusted.write_text("\n".join(chain[1:]) + "\n")
    return x509.load_pem_x509_certificate(chain[0].encode()), leaf, untrusted


async def ocsp_revoked(
    certificate: x509.Certificate, issuer: Path, root: Path, folder: Path
) -> bool:
    """The certificate's OCSP responder (its AIA) says revoked (``openssl ocsp``, the
    response verified against ``root``)."""
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    url = next(d.access_location.value for d in aia if d.access_method._name == "OCSP")
    leaf = folder / f"ocsp-{certificate.serial_number:x}.pem"
    leaf.write_bytes(certificate.public_bytes(Encoding.PEM))
    args = ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(leaf), "-url", url]
    done = await run([*args, "-CAfile", str(root)], {})
    assert "Response verify OK" in done.output, done.output
    return f"{leaf}: revoked" in done.output
