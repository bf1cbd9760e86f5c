"""The embedded SFU: Janus (Debian package `janus`) with only its videoroom plugin and HTTP transport.

`make run` starts it through office.embedded when OFFICE_SFU_URL is not set and the binary is
installed; tests/test_sfu.py starts its own. Office is the only one that creates rooms and grants
tokens (docs/adr/0023): the core runs with stored-token auth (`token_auth = true`, no
`token_auth_secret`), the admin API and the videoroom `admin_key` take OFFICE_SFU_ADMIN_SECRET, and
both HTTP ports listen on 127.0.0.1 only. No Django imports: the runner uses this before settings exist.

The production image (docker/janus.Dockerfile) renders the same files from its environment with
`python3 -m office.janus --write-config DIR` (JanusConfig.from_environ): both APIs on 0.0.0.0 inside
the container network, a fixed media port range, and the public address as Janus's NAT 1:1 mapping.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

JANUS_BINARY = "janus"
JANUS_LIB_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")
_OTHER_PLUGINS = ("audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "streaming",
                  "textroom", "videocall", "voicemail")
_OTHER_TRANSPORTS = ("mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets")


# Janus never gathers on a loopback interface (its ICE setup skips IFF_LOOPBACK, and an enforce list
# that matches nothing falls back to every interface). Loopback-only runs (tests) preload this shim:
# getifaddrs() then reports `lo` alone, without the loopback flag, so 127.0.0.1 is Janus's one candidate.
LOOPBACK_SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>
int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = 0;
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(ifap);
    if (rc != 0) return rc;
    struct ifaddrs **link = ifap;
    while (*link) {
        if (strcmp((*link)->ifa_name, "lo") == 0) {
            (*link)->ifa_flags &= ~IFF_LOOPBACK;
            link = &(*link)->ifa_next;
        } else {
            *link = (*link)->ifa_next;  /* unlinked only: glibc frees the list as one block */
        }
    }
    return 0;
}
"""


def loopback_shim(build_dir: Path) -> Path | None:
    """The compiled shim (built once per data dir with the system C compiler), or None without one."""
    library = build_dir / "janus-loopback.so"
    if library.exists():
        return library
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "janus-loopback.c"
    source.write_text(LOOPBACK_SHIM_SOURCE)
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
                            capture_output=True, text=True)
    return library if result.returncode == 0 else None


def janus_binary() -> str | None:
    """The Janus executable, or None when the package is not installed (rooms then stay a mesh)."""
    return shutil.which(JANUS_BINARY) or ("/usr/bin/janus" if Path("/usr/bin/janus").exists() else None)


def _lib_dir() -> Path:
    # Debian's multiarch directory is per architecture (x86_64-linux-gnu, aarch64-linux-gnu, ...).
    multiarch = sorted(Path("/usr/lib").glob("*-linux-gnu*/janus"))
    for candidate in (JANUS_LIB_DIR, *multiarch, Path("/usr/lib/janus"), Path("/usr/local/lib/janus"),
                      Path("/opt/janus/lib/janus")):
        if (candidate / "plugins").is_dir():
            return candidate
    return JANUS_LIB_DIR


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class JanusConfigError(ValueError):
    """A production setting the image cannot start with (the message names the variable)."""


@dataclass(frozen=True)
class JanusConfig:
    """What the generated jcfg files say; `loopback_only` keeps ICE on 127.0.0.1 (tests, `make run`).

    The defaults are the embedded Janus's: both APIs on 127.0.0.1. The image's (`from_environ`) listen
    on 0.0.0.0 and announce `nat_1_1_mapping`, the public address the browsers reach the media ports on.
    """

    config_dir: Path
    http_port: int
    admin_port: int
    admin_secret: str
    loopback_only: bool = False
    rtp_port_range: str = "20000-40000"
    debug_level: int = 3
    listen_address: str = "127.0.0.1"
    admin_listen_address: str = "127.0.0.1"
    nat_1_1_mapping: str = ""

    @classmethod
    def from_environ(cls, config_dir: Path, environ: Mapping[str, str]) -> JanusConfig:
        """The production image's configuration (docker/janus.Dockerfile, docs/deploy.md "The SFU (Janus)").

        Read here rather than in office/settings.py: the image runs this module alone, without Django.
        JANUS_ADMIN_SECRET is the same value as Office's OFFICE_SFU_ADMIN_SECRET (either name is read).
        """
        secret = environ.get("JANUS_ADMIN_SECRET") or environ.get("OFFICE_SFU_ADMIN_SECRET") or ""
        if len(secret) < 16:
            raise JanusConfigError("JANUS_ADMIN_SECRET (or OFFICE_SFU_ADMIN_SECRET) must be at least 16 characters")
        rtp_port_range = environ.get("JANUS_RTP_PORT_RANGE", "20000-20199")
        match = re.fullmatch(r"(\d+)-(\d+)", rtp_port_range)
        if not match or not 1024 <= int(match[1]) <= int(match[2]) <= 65535:
            raise JanusConfigError(f"JANUS_RTP_PORT_RANGE must be LOW-HIGH within 1024-65535, not {rtp_port_range!r}")
        nat = environ.get("JANUS_NAT_1_1_MAPPING", "").strip()
        if nat:
            try:
                ipaddress.ip_address(nat)
            except ValueError:
                raise JanusConfigError(f"JANUS_NAT_1_1_MAPPING must be an IP address, not {nat!r}") from None
        return cls(
            config_dir=config_dir,
            http_port=_port(environ, "JANUS_HTTP_PORT", 8088),
            admin_port=_port(environ, "JANUS_ADMIN_PORT", 7088),
            admin_secret=secret,
            rtp_port_range=rtp_port_range,
            debug_level=_int(environ, "JANUS_DEBUG_LEVEL", 4, low=0, high=7),
            listen_address="0.0.0.0",
            admin_listen_address="0.0.0.0",
            nat_1_1_mapping=nat,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/admin"

    def render(self) -> dict[str, str]:
        """The text of janus.jcfg, janus.transport.http.jcfg and janus.plugin.videoroom.jcfg, by file name."""
        lib = _lib_dir()
        # No STUN server: host candidates only. On loopback, Janus gathers from `lo` alone.
        nat = ["\tnice_debug = false", "\tignore_mdns = true"]
        if self.loopback_only:
            nat += ['\tice_enforce_list = "lo"']
        else:
            nat += ['\tice_ignore_list = "vmnet"']
        if self.nat_1_1_mapping:
            # Announce the public address, and keep the container's own as well: Office's transcriber
            # (transcription/sfu_listener.py) subscribes from inside the same network.
            nat += [f"\tnat_1_1_mapping = {_quote(self.nat_1_1_mapping)}", "\tkeep_private_host = true"]
        return {
            "janus.jcfg": "\n".join([
                "general: {",
                f"\tconfigs_folder = {_quote(str(self.config_dir))}",
                f"\tplugins_folder = {_quote(str(lib / 'plugins'))}",
                f"\ttransports_folder = {_quote(str(lib / 'transports'))}",
                f"\tevents_folder = {_quote(str(lib / 'events'))}",
                f"\tloggers_folder = {_quote(str(lib / 'loggers'))}",
                f"\tdebug_level = {self.debug_level}",
                '\tserver_name = "office-sfu"',
                f"\tadmin_secret = {_quote(self.admin_secret)}",
                # Stored tokens: Office adds one per (room, person) through the admin API and removes it
                # on leave or loss of access. No token_auth_secret, so no self-signed tokens are accepted.
                "\ttoken_auth = true",
                "\tsession_timeout = 30",
                "\tprotected_folders = [\"/bin\", \"/boot\", \"/dev\", \"/etc\", \"/lib\", \"/proc\", \"/sbin\", \"/sys\", \"/usr\", \"/var\"]",
                "}",
                "media: {",
                f"\trtp_port_range = {_quote(self.rtp_port_range)}",
                "}",
                "nat: {", *nat, "}",
                "plugins: {",
                "\tdisable = " + _quote(",".join(f"libjanus_{name}.so" for name in _OTHER_PLUGINS)),
                "}",
                "transports: {",
                "\tdisable = " + _quote(",".join(f"libjanus_{name}.so" for name in _OTHER_TRANSPORTS)),
                "}",
                "events: {", "\tbroadcast = false", "}",
                "loggers: {", '\tdisable = "libjanus_jsonlog.so"', "}",
                "",
            ]),
            "janus.transport.http.jcfg": "\n".join([
                "general: {",
                '\tjson = "compact"',
                '\tbase_path = "/janus"',
                "\thttp = true",
                f"\tport = {self.http_port}",
                f"\tip = {_quote(self.listen_address)}",
                "\thttps = false",
                "}",
                "admin: {",
                '\tadmin_base_path = "/admin"',
                "\tadmin_http = true",
                f"\tadmin_port = {self.admin_port}",
                f"\tadmin_ip = {_quote(self.admin_listen_address)}",
                "\tadmin_https = false",
                "}",
                "cors: {",
                "}",
                "",
            ]),
            # Rooms are created by Office at run time; admin_key stops anyone else creating one.
            "janus.plugin.videoroom.jcfg": "\n".join([
                "general: {",
                f"\tadmin_key = {_quote(self.admin_secret)}",
                "\tlock_rtp_forward = true",
                "}",
                "",
            ]),
        }

    def write(self) -> Path:
        """Write the rendered files (owner-only: they hold the admin secret); returns janus.jcfg."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for name, text in self.render().items():
            path = self.config_dir / name
            path.write_text(text)
            path.chmod(0o600)
        return self.config_dir / "janus.jcfg"


def _int(environ: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise JanusConfigError(f"{name} must be an integer from {low} to {high}, not {raw!r}")
    return int(raw)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    return _int(environ, name, default, low=1, high=65535)


def start_janus(config: JanusConfig, *, log_path: Path, timeout: float = 15.0) -> subprocess.Popen:
    """Write the configuration, start Janus and wait until its HTTP API answers `info`."""
    binary = janus_binary()
    if binary is None:
        raise FileNotFoundError("janus is not installed (scripts/install-test-system-packages.sh)")
    main_config = config.write()
    env = dict(os.environ)
    if config.loopback_only:
        shim = loopback_shim(config.config_dir)
        if shim is None:
            raise RuntimeError("cannot keep Janus's media on 127.0.0.1: no C compiler to build its loopback shim")
        env["LD_PRELOAD"] = str(shim)
    log = open(log_path, "ab")  # noqa: SIM115 (lives as long as Janus)
    process = subprocess.Popen(
        [binary, "-C", str(main_config), "-F", str(config.config_dir), "-o"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"janus exited with code {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(config.url + "/info", timeout=1) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    process.terminate()
    raise TimeoutError(f"janus did not answer on {config.url} within {timeout:.0f}s; see {log_path}")


def stop_janus(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """`python3 -m office.janus --write-config DIR`: the image's entrypoint writes its config, then execs janus."""
    parser = argparse.ArgumentParser(prog="python3 -m office.janus", description=__doc__.splitlines()[0])
    parser.add_argument("--write-config", metavar="DIR", type=Path, required=True,
                        help="write the production configuration (from JANUS_* variables) into DIR")
    args = parser.parse_args(argv)
    try:
        config = JanusConfig.from_environ(args.write_config, os.environ if environ is None else environ)
    except JanusConfigError as exc:
        print(f"janus config: {exc}", file=sys.stderr)
        return 2
    print(config.write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
