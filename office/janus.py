"""The embedded SFU: Janus (Debian package `janus`) with only its videoroom plugin and HTTP transport.

`make run` starts it through office.embedded when OFFICE_SFU_URL is not set and the binary is
installed; tests/test_sfu.py starts its own. Office is the only one that creates rooms and grants
tokens (docs/adr/0023): the core runs with stored-token auth (`token_auth = true`, no
`token_auth_secret`), the admin API and the videoroom `admin_key` take OFFICE_SFU_ADMIN_SECRET, and
both HTTP ports listen on 127.0.0.1 only. No Django imports: the runner uses this before settings exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
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
    for candidate in (JANUS_LIB_DIR, Path("/usr/lib/janus"), Path("/usr/local/lib/janus"), Path("/opt/janus/lib/janus")):
        if (candidate / "plugins").is_dir():
            return candidate
    return JANUS_LIB_DIR


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class JanusConfig:
    """What the generated jcfg files say; `loopback_only` keeps ICE on 127.0.0.1 (tests, `make run`)."""

    config_dir: Path
    http_port: int
    admin_port: int
    admin_secret: str
    loopback_only: bool = False
    rtp_port_range: str = "20000-40000"
    debug_level: int = 3

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/admin"

    def write(self) -> Path:
        """Write janus.jcfg, janus.transport.http.jcfg and janus.plugin.videoroom.jcfg; returns janus.jcfg."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        lib = _lib_dir()
        # No STUN server: host candidates only. On loopback, Janus gathers from `lo` alone.
        nat = ["\tnice_debug = false", "\tignore_mdns = true"]
        if self.loopback_only:
            nat += ['\tice_enforce_list = "lo"']
        else:
            nat += ['\tice_ignore_list = "vmnet"']
        files = {
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
                '\tip = "127.0.0.1"',
                "\thttps = false",
                "}",
                "admin: {",
                '\tadmin_base_path = "/admin"',
                "\tadmin_http = true",
                f"\tadmin_port = {self.admin_port}",
                '\tadmin_ip = "127.0.0.1"',
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
        for name, text in files.items():
            path = self.config_dir / name
            path.write_text(text)
            path.chmod(0o600)
        return self.config_dir / "janus.jcfg"


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
