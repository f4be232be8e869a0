"""SSH to a host of the estate: verified host keys, key authentication, argv-only commands.

Owns the transport (paramiko; docs/design.md says why). What a hospital security team checks:

* the host's key must already be in the target's ``known_hosts`` file (looked up as
  ``[address]:port``, or ``host_key_alias``): an unknown or changed key is refused with
  the host's name, the key's SHA256 fingerprint and how to accept it deliberately; there is
  no trust on first use;
* only key authentication (a key file, its passphrase from a named variable, or the agent);
  password and keyboard-interactive are never tried;
* a remote command is always an argv list joined with :func:`shlex.join`, so a quote,
  ``$(...)``, ``;`` or a newline in a service name or command line is one literal argument;
* no key, passphrase or token is ever put in a message, a journal or a report.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import socket
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from resildrill.drill.model import HostSpec
from resildrill.errors import InvalidInput, ToolFailed

__all__ = ["GUARD_SHA256", "HostLink", "guard_source", "quote_argv"]


def guard_source() -> bytes:
    """The guard program, as shipped in this package."""
    return resources.files("resildrill.remote").joinpath("guard.py").read_bytes()


GUARD_SHA256 = hashlib.sha256(guard_source()).hexdigest()
#: Where this installation's guard is (to copy to a host by hand).
GUARD_FILE = str(resources.files("resildrill.remote").joinpath("guard.py"))


def quote_argv(argv: list[str]) -> str:
    """One shell-safe line for an argv list (sshd hands a command line to the user's shell)."""
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("a remote command is a non-empty list of strings")
    return shlex.join(argv)


def fingerprint(key: Any) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _paramiko() -> Any:
    import paramiko

    return paramiko


@dataclass(frozen=True)
class CommandResult:
    code: int
    stdout: bytes
    stderr: bytes


class HostLink:
    """One authenticated SSH connection to one host (thread-safe to open channels on)."""

    def __init__(self, name: str, spec: HostSpec, base_dir: Path) -> None:
        self.name, self.spec, self.base_dir = name, spec, base_dir
        self.transport: Any = None
        self._lock = threading.Lock()
        self._guard_checked_on: Any = None  # the transport the guard's hash was checked on

    # -- where things are ---------------------------------------------------------------

    @property
    def lookup_name(self) -> str:
        if self.spec.host_key_alias:
            return self.spec.host_key_alias
        addr = self.spec.address
        return addr if self.spec.port == 22 else f"[{addr}]:{self.spec.port}"

    def _path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.base_dir / p

    @property
    def where(self) -> str:
        return f"host {self.name!r} ({self.spec.user}@{self.spec.address}:{self.spec.port})"

    # -- connecting ---------------------------------------------------------------------

    def connect(self) -> HostLink:
        """Open, verify the host key, authenticate. InvalidInput (exit 2) for a key problem
        the operator must settle; ToolFailed (6) when the host cannot be reached."""
        with self._lock:
            if self.transport is not None and self.transport.is_active():
                return self
            paramiko = _paramiko()
            timeout = self.spec.connect_timeout
            try:
                sock = socket.create_connection((self.spec.address, self.spec.port), timeout)
            except OSError as exc:
                raise ToolFailed(f"{self.where}: cannot connect: {exc.strerror or exc}") from None
            transport = paramiko.Transport(sock)
            transport.banner_timeout = transport.auth_timeout = timeout
            try:
                transport.start_client(timeout=timeout)
                self._check_host_key(transport.get_remote_server_key())
                self._authenticate(transport)
            except BaseException:
                transport.close()
                raise
            transport.set_keepalive(0)
            self.transport = transport
            return self

    def _check_host_key(self, key: Any) -> None:
        paramiko = _paramiko()
        known_path = self._path(self.spec.known_hosts)
        accept = (
            f"check it out of band, then add it: ssh-keyscan -p {self.spec.port} "
            f"{self.spec.address} >> {known_path}"
        )
        try:
            known = paramiko.HostKeys(str(known_path))
        except OSError:
            raise InvalidInput(
                f"{self.where}: known_hosts file {known_path} cannot be read; host key "
                f"{key.get_name()} {fingerprint(key)} not verified ({accept})"
            ) from None
        except Exception as exc:  # a malformed file is the operator's to fix
            raise InvalidInput(f"{self.where}: known_hosts {known_path}: {exc}") from None
        entries = known.lookup(self.lookup_name)
        if not entries:
            raise InvalidInput(
                f"{self.where}: unknown host key {key.get_name()} {fingerprint(key)}: "
                f"{self.lookup_name} is not in {known_path}; refusing (no trust on first "
                f"use; {accept})"
            )
        expected = entries.get(key.get_name())
        if expected is None or expected.asbytes() != key.asbytes():
            raise InvalidInput(
                f"{self.where}: HOST KEY CHANGED: offered {key.get_name()} {fingerprint(key)}, "
                f"{known_path} has a different key for {self.lookup_name}; refusing (if the "
                f"change is expected, remove the old line: ssh-keygen -R '{self.lookup_name}' "
                f"-f {known_path}, then add the new key deliberately)"
            )

    def _keys(self) -> list[Any]:
        paramiko = _paramiko()
        if self.spec.agent:
            keys = list(paramiko.Agent().get_keys())
            if not keys:
                raise InvalidInput(f"{self.where}: agent: true, but the SSH agent holds no key")
            return keys
        assert self.spec.key_file is not None
        path = self._path(self.spec.key_file)
        passphrase = None
        if self.spec.key_passphrase_env:
            passphrase = os.environ.get(self.spec.key_passphrase_env)
            if passphrase is None:
                raise InvalidInput(
                    f"{self.where}: key_passphrase_env: ${self.spec.key_passphrase_env} is not set"
                )
        try:
            return [paramiko.PKey.from_path(str(path), password=passphrase)]
        except FileNotFoundError:
            raise InvalidInput(f"{self.where}: key_file {path}: no such file") from None
        except paramiko.PasswordRequiredException:
            raise InvalidInput(
                f"{self.where}: key_file {path} is encrypted; name the variable holding its "
                "passphrase in key_passphrase_env"
            ) from None
        except (paramiko.SSHException, ValueError) as exc:
            raise InvalidInput(f"{self.where}: key_file {path}: {exc}") from None

    def _authenticate(self, transport: Any) -> None:
        paramiko = _paramiko()
        for key in self._keys():
            try:
                transport.auth_publickey(self.spec.user, key)
            except paramiko.AuthenticationException:
                continue
            if transport.is_authenticated():
                return
        source = "the SSH agent's keys" if self.spec.agent else f"key {self.spec.key_file}"
        raise InvalidInput(
            f"{self.where}: {source} refused for user {self.spec.user!r} (key authentication "
            "only; is its public key in the user's authorized_keys?)"
        )

    def close(self) -> None:
        with self._lock:
            if self.transport is not None:
                self.transport.close()
                self.transport = None

    # -- commands -------------------------------------------------------------------------

    def command_line(self, argv: list[str], *, privileged: bool = False) -> str:
        prefix = ["sudo", "-n", "--"] if privileged and self.spec.sudo else []
        return quote_argv([*prefix, *argv])

    def open_channel(self, argv: list[str], *, privileged: bool = False) -> Any:
        """Start a command; the channel is its stdin/stdout."""
        self.connect()
        channel = self.transport.open_session(timeout=self.spec.connect_timeout)
        channel.exec_command(self.command_line(argv, privileged=privileged))
        return channel

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes = b"",
        timeout_s: float = 30.0,
        privileged: bool = False,
    ) -> CommandResult:
        """Run a command to completion (bounded by ``timeout_s``)."""
        channel = self.open_channel(argv, privileged=privileged)
        channel.settimeout(timeout_s)
        try:
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                chunk = channel.recv(65536)
                if not chunk:
                    break
                out += chunk
            while channel.recv_stderr_ready() or not channel.exit_status_ready():
                chunk = channel.recv_stderr(65536)
                if not chunk:
                    break
                err += chunk
            code = channel.recv_exit_status()
        except TimeoutError:
            raise ToolFailed(f"{self.where}: {argv[0]} did not finish in {timeout_s:g} s") from None
        finally:
            channel.close()
        return CommandResult(code, bytes(out), bytes(err))

    # -- the guard program ------------------------------------------------------------------

    def guard_path(self) -> str:
        return self.spec.guard_path or f".cache/resildrill/guard-{GUARD_SHA256[:16]}.py"

    def install_guard(self) -> str:
        """Copy the guard (unless the right one is there) and check its hash on the host; an
        administrator's copy (``guard_path``) is only checked, never written. Checked once
        per connection (every one-shot command of a preflight would otherwise repeat it)."""
        path = self.guard_path()
        self.connect()
        if self._guard_checked_on is self.transport:
            return path
        checked_on = self.transport
        path = self._install_guard(path)
        self._guard_checked_on = checked_on
        return path

    def _install_guard(self, path: str) -> str:
        check = self.run([self.spec.python, "-c", _HASH_CHECK, path, GUARD_SHA256])
        if check.code == 0:
            return path
        if self.spec.guard_path is not None:
            raise ToolFailed(
                f"{self.where}: {path} is not this version's guard (sha256 {GUARD_SHA256}); "
                f"install it: sudo install -o root -g root -m 0644 {GUARD_FILE} {path}"
            )
        if check.code == 127 or b"not found" in check.stderr:
            raise ToolFailed(
                f"{self.where}: {self.spec.python} not found (the guard needs Python 3)"
            )
        wrote = self.run([self.spec.python, "-c", _WRITE, path, GUARD_SHA256], stdin=guard_source())
        if wrote.code != 0:
            why = wrote.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise ToolFailed(f"{self.where}: could not install the guard: {why[0]}")
        return path


# Run on the host by the guard's Python: exit 0 when the file there has the expected hash.
_HASH_CHECK = (
    "import hashlib,sys\n"
    "try:\n"
    "    d=open(sys.argv[1],'rb').read()\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
    "sys.exit(0 if hashlib.sha256(d).hexdigest()==sys.argv[2] else 1)\n"
)
# Write stdin to the path (atomically, 0700 folder), then check the hash of what landed.
_WRITE = (
    "import hashlib,os,sys\n"
    "p=sys.argv[1]; d=sys.stdin.buffer.read()\n"
    "os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)\n"
    "t=p+'.tmp'\n"
    "open(t,'wb').write(d); os.chmod(t,0o600); os.replace(t,p)\n"
    "h=hashlib.sha256(open(p,'rb').read()).hexdigest()\n"
    "sys.exit(0 if h==sys.argv[2] else 'hash mismatch after copy: '+h)\n"
)
