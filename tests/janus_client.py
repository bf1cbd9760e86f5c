"""A test-only Janus client: what a browser does with an `sfu.join` frame, done by aiortc over Janus's
HTTP API (session, videoroom handle, join with the granted token, SDP with candidates inside, events
by long poll). Media stays on 127.0.0.1: aioice's host addresses are patched from
OFFICE_RTC_HOST_ADDRESSES (transcription/apps.py) and Janus gathers on `lo` only (office/janus.py).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import urllib.error
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription


class JanusError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


def _http(method: str, url: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


class JanusTestClient:
    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url.rstrip("/"), token
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self.events: list[dict] = []
        self.pc = RTCPeerConnection()
        self._poller: asyncio.Task | None = None
        self._closed = False

    async def _post(self, path: str, body: dict) -> dict:
        body = {**body, "transaction": secrets.token_hex(6)}
        if self.token is not None:
            body["token"] = self.token
        answer = await asyncio.to_thread(_http, "POST", self.url + path, body)
        if answer.get("janus") == "error":
            raise JanusError(answer["error"]["code"], answer["error"]["reason"])
        return answer

    async def open(self) -> None:
        """Create a session and attach the videoroom plugin; raises JanusError when refused."""
        self.session_id = (await self._post("", {"janus": "create"}))["data"]["id"]
        self._poller = asyncio.create_task(self._poll())
        attached = await self._post(f"/{self.session_id}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        self.handle_id = attached["data"]["id"]

    async def _poll(self) -> None:
        query = f"/{self.session_id}?maxev=10&rid=%s"
        if self.token is not None:
            query += f"&token={self.token}"
        while not self._closed:
            try:  # a short read timeout, so that no thread outlives close() by more than a second
                answer = await asyncio.to_thread(_http, "GET", self.url + query % secrets.token_hex(4), None, 1)
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
                continue  # also a reply cut short when Janus goes (IncompleteRead, half a JSON body)
            batch = answer if isinstance(answer, list) else [answer]
            self.events.extend(e for e in batch if e.get("janus") != "keepalive")
            if any(e.get("janus") == "error" and e.get("error", {}).get("code") == 458 for e in batch):
                return  # the session is gone

    async def _message(self, body: dict, jsep: dict | None = None, timeout: float = 10.0) -> dict:
        """Send a videoroom request and wait for the event answering it (same transaction)."""
        request = {"janus": "message", "body": body, "transaction": secrets.token_hex(6)}
        if jsep is not None:
            request["jsep"] = jsep
        if self.token is not None:
            request["token"] = self.token
        answer = await asyncio.to_thread(_http, "POST", f"{self.url}/{self.session_id}/{self.handle_id}", request)
        if answer.get("janus") == "error":
            raise JanusError(answer["error"]["code"], answer["error"]["reason"])
        if answer.get("janus") == "success":  # synchronous requests answer at once
            return answer
        event = await self.wait_for(lambda e: e.get("transaction") == request["transaction"], timeout)
        data = event.get("plugindata", {}).get("data", {})
        if data.get("error_code"):
            raise JanusError(data["error_code"], data.get("error", ""))
        return event

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for event in self.events:
                if predicate(event):
                    return event
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no such Janus event within {timeout}s; got {self.events[-5:]}")

    async def publish(self, room: int, track, display: str = "") -> int:
        """Join as a publisher with the granted token and send `track` (audio, or video as a page's camera
        is sent); returns the feed id."""
        joined = await self._message({"request": "join", "ptype": "publisher", "room": room, "token": self.token or "",
                                      "display": display})
        feed_id = joined["plugindata"]["data"]["id"]
        self.pc.addTransceiver(track, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())  # aiortc: gathered, candidates inside
        audio = track.kind == "audio"
        event = await self._message({"request": "configure", "audio": audio, "video": not audio},
                                    jsep={"type": "offer", "sdp": self.pc.localDescription.sdp})
        await self.pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
        return feed_id

    async def subscribe(self, room: int, feed_id: int) -> asyncio.Future:
        """Join as a subscriber to one feed; the returned future resolves to the received audio track."""
        track_future: asyncio.Future = asyncio.get_running_loop().create_future()

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "audio" and not track_future.done():
                track_future.set_result(track)

        event = await self._message({"request": "join", "ptype": "subscriber", "room": room,
                                     "token": self.token or "", "streams": [{"feed": feed_id}]})
        await self.pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._message({"request": "start"}, jsep={"type": "answer", "sdp": self.pc.localDescription.sdp})
        return track_future

    async def close(self) -> None:
        self._closed = True
        await self.pc.close()
        if self.session_id is not None:
            try:
                await self._post(f"/{self.session_id}", {"janus": "destroy"})
            except (JanusError, urllib.error.URLError, OSError):
                pass
