"""Twelve people in one room, as a browser mesh and through the SFU (Janus): what each side costs.

Who is in the room: 2 Chromium browsers (each its own browser process tree, a fake microphone playing
speech) and 10 aiortc clients playing speech WAVs (../shared/speech-dev, else espeak-ng).

- SFU run: the embedded Janus (office.janus, loopback only); the room is created and every person
  granted through rooms.sfu.JanusSfu, as Office does. All 12 publish; each browser runs the page's own
  static/office/sfu.js and subscribes to the 11 others, playing them through <audio> elements as
  voice.js does. The aiortc clients publish; --aiortc-listeners of them also subscribe to all 11 others,
  so Janus forwards more than the browsers' 22 streams (by default 2 listeners: 44 forwarded streams).
- Mesh run: each browser holds one RTCPeerConnection per other person, 11 in all: one to the other
  browser and one to each aiortc person (an aiortc peer connection per browser and person), each
  sending the microphone and playing what comes back, the way voice.js calls people. The bench passes
  the SDP itself (no voice.signal relay: signalling is not media cost). The aiortc people do not
  call each other: that costs the browsers nothing, and on 2 cores 90 more aiortc calls would swamp
  the machine. So the browser figures are a 12-person mesh as a browser sees it; there is no Janus.

Measured over --seconds (30) after --warmup (5): CPU (user+system time over wall time, 100 = one core)
of Janus, of each browser (its whole process tree, and its renderer alone), of this process (the
aiortc harness); per browser the upload (outbound-rtp bytesSent per second, summed over its peer
connections) and download (inbound-rtp bytesReceived). Prints a table, writes bench/results/sfu.json.

    .venv/bin/python bench/sfu.py [--seconds 30] [--aiortc 10] [--only mesh|sfu]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))  # nothing is signed: only rooms.sfu is used
os.environ["OFFICE_RTC_HOST_ADDRESSES"] = "127.0.0.1"  # aiortc gathers on loopback (transcription/apps.py)
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaBlackhole, MediaPlayer, MediaRelay  # noqa: E402
from common import CpuMeter, log, print_table, write_results  # noqa: E402

from office.embedded import free_port  # noqa: E402
from office.janus import JanusConfig, janus_binary, loopback_shim, start_janus, stop_janus  # noqa: E402
from rooms.sfu import JanusSfu  # noqa: E402
from tests.janus_client import JanusTestClient  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]
SPEECH_DIR = ROOT.parent / "shared" / "speech-dev"
ROOM = 4242

# The bench page: the microphone as AudioHub opens it, the SFU through sfu.js, mesh calls as voice.js
# makes them (one connection per person, the microphone on each, what comes back played).
PAGE = """<!doctype html><meta charset="utf-8"><title>sfu bench</title>
<script type="module">
import { SfuSession } from "/sfu.js";
const pcs = new Map();
const isLoopback = (l) => { const a = l.split(" ")[4] || ""; return a.startsWith("127."); };
const loopbackOnly = (sdp) => sdp.split("\\r\\n").filter((l) => !l.startsWith("a=candidate:") || isLoopback(l)).join("\\r\\n");
const gathered = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === "complete") return resolve();
  pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
});
function play(track) {
  const audio = document.createElement("audio");
  audio.autoplay = true;
  audio.srcObject = new MediaStream([track]);
  document.body.append(audio);
  audio.play().catch(() => {});
}
window.mic = async () => {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
  window.micTrack = stream.getAudioTracks()[0];
  window.micStream = stream;
};
function newPc(id) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pcs.set(id, pc);
  pc.addTrack(window.micTrack, window.micStream);
  pc.ontrack = (e) => play(e.track);
  return pc;
}
window.meshOffer = async (id) => {
  const pc = newPc(id);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return loopbackOnly(pc.localDescription.sdp);
};
window.meshAnswer = async (id, sdp) => {
  const pc = newPc(id);
  await pc.setRemoteDescription({ type: "offer", sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  return loopbackOnly(pc.localDescription.sdp);
};
window.meshAccept = async (id, sdp) => { await pcs.get(id).setRemoteDescription({ type: "answer", sdp }); };
window.joinSfu = async (grant, display) => {
  window.sfu = new SfuSession(grant, { track: window.micTrack, display, onTrack: (feed, track) => play(track) });
  await window.sfu.start();
  return window.sfu.publisher.feed;
};
window.allPcs = () => {
  const list = [...pcs.values()];
  if (window.sfu) {
    if (window.sfu.publisher && window.sfu.publisher.pc) list.push(window.sfu.publisher.pc);
    for (const { pc } of window.sfu.subscribers.values()) list.push(pc);
  }
  return list;
};
window.rtpTotals = async () => {
  let sent = 0, received = 0, receiving = 0, connected = 0;
  const perStream = [];
  for (const pc of window.allPcs()) {
    if (pc.connectionState === "connected") connected += 1;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === "outbound-rtp" && s.kind === "audio") sent += s.bytesSent;
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        received += s.bytesReceived;
        perStream.push(s.bytesReceived);
        if (s.bytesReceived > 0) receiving += 1;
      }
    }
  }
  return { sent, received, receiving, connected, perStream, pcs: window.allPcs().length };
};
</script>"""


def speech_files(count: int, workdir: Path) -> list[str]:
    """Speech WAVs for the people (cycled); espeak-ng sentences when the shared set is missing."""
    found = sorted(str(p) for p in SPEECH_DIR.glob("*.wav") if "meeting_like" not in p.name) if SPEECH_DIR.exists() else []
    if not found:
        if not shutil.which("espeak-ng"):
            raise SystemExit("no speech: neither ../shared/speech-dev nor espeak-ng")
        for n in range(4):
            path = workdir / f"speech{n}.wav"
            subprocess.run(["espeak-ng", "-w", str(path), f"Sentence number {n} of the weekly planning meeting, "
                            "where we talk about the roadmap and the budget."], check=True)
            found.append(str(path))
    return [found[n % len(found)] for n in range(count)]


def serve_page(workdir: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    shutil.copy(ROOT / "static" / "office" / "sfu.js", workdir / "sfu.js")
    (workdir / "index.html").write_text(PAGE)
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(workdir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/index.html", server


def _chromium_mains() -> set[int]:
    mains = set()
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and "chromium" in (proc.info["name"] or "") and not any(a.startswith("--type=") for a in cmd):
            mains.add(proc.info["pid"])
    return mains


def _renderers(main_pid: int) -> list[int]:
    try:
        children = psutil.Process(main_pid).children(recursive=True)
    except psutil.Error:
        return []
    return [c.pid for c in children if any(a == "--type=renderer" for a in (c.cmdline() or []))]


class Browsers:
    """Two Chromium browsers (own process trees), one page each, fake microphones playing speech."""

    def __init__(self, playwright, url: str, wavs: list[str]) -> None:
        self.playwright, self.url, self.wavs = playwright, url, wavs
        self.browsers, self.pages, self.mains = [], [], []

    async def start(self) -> None:
        for wav in self.wavs:
            before = _chromium_mains()
            browser = await self.playwright.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"])
            new = _chromium_mains() - before
            if len(new) != 1:
                raise SystemExit(f"could not tell this Chromium's process apart ({new})")
            context = await browser.new_context(permissions=["microphone"])
            page = await context.new_page()
            await page.goto(self.url)
            await page.wait_for_function("typeof window.mic === 'function'")
            await page.evaluate("window.mic()")
            self.browsers.append(browser)
            self.pages.append(page)
            self.mains.append(new.pop())

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.close()


async def measure(browsers: Browsers, groups: dict[str, list[int]], seconds: float) -> dict:
    """CPU of each group and per-browser RTP byte rates over `seconds`."""
    for n, main in enumerate(browsers.mains):
        groups[f"browser{n + 1}"] = [main]
        groups[f"browser{n + 1}_renderer"] = _renderers(main)
    meter = _TreeCpu(groups)
    before = [await page.evaluate("window.rtpTotals()") for page in browsers.pages]
    meter.begin()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    cpu = meter.end()
    after = [await page.evaluate("window.rtpTotals()") for page in browsers.pages]
    per_browser = []
    for b, a in zip(before, after, strict=True):
        # a stream's own rate (same order: connections are not added during the window)
        streams = [round((y - x) * 8 / wall / 1000, 1) for x, y in zip(b["perStream"], a["perStream"], strict=False)]
        per_browser.append({
            "stream_down_kbit_s_min": min(streams, default=0.0), "stream_down_kbit_s_max": max(streams, default=0.0),
            "up_kbit_s": round((a["sent"] - b["sent"]) * 8 / wall / 1000, 1),
            "down_kbit_s": round((a["received"] - b["received"]) * 8 / wall / 1000, 1),
            "peer_connections": a["pcs"], "connected": a["connected"], "streams_received": a["receiving"],
        })
    return {"cpu_pct_of_one_core": cpu, "browsers": per_browser, "seconds": round(wall, 1)}


class _TreeCpu(CpuMeter):
    """CpuMeter with every group's children counted (a browser is a process tree)."""

    def _sample(self):
        return {name: self._cpu(pids, children=not name.endswith("_renderer")) for name, pids in self.groups.items()}


async def mesh_run(args, playwright, url: str, wavs: list[str]) -> dict:
    browsers = Browsers(playwright, url, wavs[:2])
    await browsers.start()
    relay = MediaRelay()
    players = [MediaPlayer(wav, loop=True) for wav in wavs[2:]]
    pcs: list[RTCPeerConnection] = []
    sinks: list[MediaBlackhole] = []
    try:
        log("mesh: the two browsers call each other")
        a, b = browsers.pages
        offer = await a.evaluate("window.meshOffer('browser2')")
        answer = await b.evaluate("([id, sdp]) => window.meshAnswer(id, sdp)", ["browser1", offer])
        await a.evaluate("([id, sdp]) => window.meshAccept(id, sdp)", ["browser2", answer])
        log(f"mesh: each browser calls the {len(players)} aiortc people")
        for n, page in enumerate(browsers.pages):
            for i, player in enumerate(players):
                pc = RTCPeerConnection()
                pcs.append(pc)
                pc.addTrack(relay.subscribe(player.audio))
                sink = MediaBlackhole()  # decoded and dropped, as a listener's speaker would
                sinks.append(sink)
                pc.on("track", lambda track, sink=sink: (sink.addTrack(track), asyncio.ensure_future(sink.start())))
                offer = await page.evaluate("(id) => window.meshOffer(id)", f"aiortc{i}")
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await page.evaluate("([id, sdp]) => window.meshAccept(id, sdp)", [f"aiortc{i}", pc.localDescription.sdp])
            log(f"mesh: browser{n + 1} placed its calls")
        await _settle(browsers, expect_streams=1 + len(players), warmup=args.warmup)
        result = await measure(browsers, {"bench_aiortc": [os.getpid()]}, args.seconds)
        result["aiortc_connections"] = len(pcs)
        return result
    finally:
        for pc in pcs:
            await pc.close()
        for sink in sinks:
            await sink.stop()
        for player in players:
            if player.audio:
                player.audio.stop()
        await browsers.close()


async def sfu_run(args, playwright, url: str, wavs: list[str], workdir: Path) -> dict:
    config = JanusConfig(config_dir=workdir / "janus", http_port=free_port(), admin_port=free_port(),
                         admin_secret=secrets.token_urlsafe(24), loopback_only=True)
    if loopback_shim(config.config_dir) is None:
        raise SystemExit("no C compiler: Janus cannot be kept on 127.0.0.1 (office/janus.py)")
    janus = start_janus(config, log_path=workdir / "janus.log")
    browsers = Browsers(playwright, url, wavs[:2])
    clients: list[JanusTestClient] = []
    players = [MediaPlayer(wav, loop=True) for wav in wavs[2:]]
    try:
        sfu = JanusSfu(url=config.url, admin_url=config.admin_url, admin_secret=config.admin_secret)
        await asyncio.to_thread(sfu.ensure_room, ROOM)
        people = 2 + len(players)
        grants = [await asyncio.to_thread(sfu.grant, ROOM, user) for user in range(1, people + 1)]
        log(f"sfu: {len(players)} aiortc people publish")
        feeds = []
        for i, player in enumerate(players):
            client = JanusTestClient(grants[2 + i].url, grants[2 + i].token)
            clients.append(client)
            await client.open()
            feeds.append(await client.publish(ROOM, player.audio, display=f"aiortc{i}"))
        await browsers.start()
        for n, page in enumerate(browsers.pages):
            grant = {"url": grants[n].url, "room": ROOM, "token": grants[n].token}
            feeds.append(await page.evaluate("([g, d]) => window.joinSfu(g, d)", [grant, f"browser{n + 1}"]))
        listeners = min(args.aiortc_listeners, len(players))
        log(f"sfu: the browsers joined; {listeners} aiortc people listen to everyone too")
        sinks = []
        for i in range(listeners):
            for feed in feeds:
                if feed == feeds[i]:
                    continue
                client = JanusTestClient(grants[2 + i].url, grants[2 + i].token)
                clients.append(client)
                await client.open()
                track = await asyncio.wait_for(await client.subscribe(ROOM, feed), timeout=15)
                sink = MediaBlackhole()
                sink.addTrack(track)
                await sink.start()
                sinks.append(sink)
        await _settle(browsers, expect_streams=people - 1, warmup=args.warmup)
        result = await measure(browsers, {"janus": [janus.pid], "bench_aiortc": [os.getpid()]}, args.seconds)
        result["forwarded_streams"] = 2 * (people - 1) + len(sinks)
        result["janus_participants"] = len(await asyncio.to_thread(sfu.participants, ROOM))
        for sink in sinks:
            await sink.stop()
        return result
    finally:
        for player in players:
            if player.audio:
                player.audio.stop()
        for client in clients:
            await client.close()
        pollers = [c._poller for c in clients if c._poller is not None]
        if pollers:  # each ends within a second of close(); Janus goes after them
            await asyncio.wait(pollers, timeout=3)
        await browsers.close()
        stop_janus(janus)


async def _settle(browsers: Browsers, *, expect_streams: int, warmup: float) -> None:
    """Wait until each browser receives every other person, then let the codecs warm up."""
    deadline = time.monotonic() + 60
    while True:
        totals = [await page.evaluate("window.rtpTotals()") for page in browsers.pages]
        if all(t["receiving"] >= expect_streams for t in totals):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"not everyone is heard after 60 s: {totals}")
        await asyncio.sleep(0.5)
    await asyncio.sleep(warmup)


def table_rows(results: dict) -> list[dict]:
    rows = []
    for mode, run in results["runs"].items():
        cpu = run["cpu_pct_of_one_core"]
        for n, b in enumerate(run["browsers"]):
            rows.append({
                "mode": mode, "browser": n + 1, "peer_conns": b["peer_connections"], "heard": b["streams_received"],
                "up_kbit_s": b["up_kbit_s"], "down_kbit_s": b["down_kbit_s"],
                "stream_min": b["stream_down_kbit_s_min"],
                "browser_cpu_%": cpu.get(f"browser{n + 1}"), "renderer_cpu_%": cpu.get(f"browser{n + 1}_renderer"),
                "janus_cpu_%": cpu.get("janus"), "aiortc_cpu_%": cpu.get("bench_aiortc"), "machine_%": cpu.get("machine"),
            })
    return rows


async def main_async(args) -> dict:
    from playwright.async_api import async_playwright

    # Every Janus client long-polls from a worker thread (tests/janus_client.py): room for all of them.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=96))
    workdir = Path(tempfile.mkdtemp(prefix="office-bench-sfu-"))
    wavs = speech_files(2 + args.aiortc, workdir)
    url, server = serve_page(workdir)
    results = {"people": 2 + args.aiortc, "browsers": 2, "aiortc": args.aiortc, "seconds": args.seconds,
               "cpu_count": psutil.cpu_count(), "speech": sorted({Path(w).name for w in wavs}), "runs": {}}
    try:
        async with async_playwright() as playwright:
            if args.only in (None, "mesh"):
                log("mesh run")
                results["runs"]["mesh"] = await mesh_run(args, playwright, url, wavs)
            if args.only in (None, "sfu"):
                if janus_binary() is None:
                    log("janus is not installed: no SFU run (scripts/install-test-system-packages.sh)")
                else:
                    log("sfu run")
                    results["runs"]["sfu"] = await sfu_run(args, playwright, url, wavs, workdir)
    finally:
        server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--aiortc", type=int, default=10, help="aiortc people besides the 2 browsers")
    parser.add_argument("--aiortc-listeners", type=int, default=2,
                        help="SFU run: aiortc people who also subscribe to everyone (Janus forwarding load)")
    parser.add_argument("--only", choices=["mesh", "sfu"])
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit("Chromium is missing (scripts/install-test-system-packages.sh)")
    results = asyncio.run(main_async(args))
    print_table(table_rows(results), ["mode", "browser", "peer_conns", "heard", "up_kbit_s", "down_kbit_s", "stream_min",
                                      "browser_cpu_%", "renderer_cpu_%", "janus_cpu_%", "aiortc_cpu_%", "machine_%"])
    path = write_results("sfu.json", results)
    log(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
