"""The link helper that ``benchmarks/_network.py``'s ``wan_link`` starts: one process per link.

    python benchmarks/_link_helper.py serve tun|netem|relay   # JSON lines: a ready line, then answers
    python benchmarks/_link_helper.py capabilities            # JSON: netns / netem / tun, with errors

``serve`` builds the link, prints one JSON line describing it, then answers requests read from stdin
(``{"op": "rtt", "ms": 80}``, ``{"op": "expose", "port": P}``, ``{"op": "stats"}``) until stdin closes.
For ``tun`` and ``netem`` it moves itself into a new, anonymous network namespace (the client side;
clients join it with ``nsenter --net=/proc/<pid>/ns/net``) and holds the devices: when it exits, the
TUN devices close with their file descriptors and a veth pair dies with its namespace. It asks the
kernel to kill it when its parent dies, and ignores Ctrl-C (the benchmark closes it in order).
Root (CAP_NET_ADMIN) is needed for ``tun`` and ``netem``; ``relay`` needs nothing. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MECHANISMS = ("netem", "tun", "relay")
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
ROUTE_TABLE = 100  # the client namespace's table that sends exposed ports over the link
LOOPBACK = socket.inet_aton("127.0.0.1")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (no orphaned namespace or device)."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def unshare_net() -> None:
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def open_tun(name: str) -> int:
    """Create TUN device ``name`` in the current namespace; it vanishes when the fd is closed."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def sh(*command: str) -> None:
    """Run ``ip``/``tc`` in the current namespace; raise with its stderr on failure."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")


def sysctl(path: str, value: str) -> None:
    """Write /proc/sys/<path> (per network namespace for net/...)."""
    Path("/proc/sys", path).write_text(value)


def addresses(tag: int) -> tuple[str, str]:
    """A /30 of 198.18.0.0/15 (RFC 2544, set aside for benchmarks) chosen by pid: root .1, client .2."""
    base = (198 << 24) | (18 << 16) | ((tag % 32768) * 4)
    return socket.inet_ntoa(struct.pack("!I", base + 1)), socket.inet_ntoa(struct.pack("!I", base + 2))


def probe_capabilities() -> dict[str, Any]:
    """Try, in a throw-away namespace: unshare, netem on lo, a TUN device (this process exits after)."""
    found: dict[str, Any] = {"netns": False, "netem": False, "tun": False, "errors": {}}
    try:
        unshare_net()
        found["netns"] = True
    except OSError as exc:
        found["errors"]["netns"] = str(exc)
        return found
    try:
        sh("ip", "link", "set", "lo", "up")
        sh("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
        found["netem"] = True
    except (RuntimeError, OSError) as exc:
        found["errors"]["netem"] = str(exc)
    try:
        os.close(open_tun("cbprobe0"))
        found["tun"] = True
    except OSError as exc:
        found["errors"]["tun"] = str(exc)
    return found


class Namespaces:
    """The helper's two network namespaces: the benchmark's (root) and the client's (new)."""

    def __init__(self) -> None:
        self.root = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.congestion = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
        unshare_net()
        self.client = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.path = f"/proc/{os.getpid()}/ns/net"
        sysctl("net/ipv4/tcp_congestion_control", self.congestion)  # the client's TCP like ours
        sysctl("net/ipv4/conf/all/rp_filter", "0")

    @contextmanager
    def in_root(self) -> Iterator[None]:
        setns(self.root)
        try:
            yield
        finally:
            setns(self.client)


def setup_tun(ns: Namespaces, tag: int) -> tuple[int, int, dict[str, Any]]:
    """TUN pair: root side routes 198.18.x.2 to the line; client side sends exposed ports to it."""
    root_if, client_if = f"cbr{tag}", f"cbc{tag}"
    _root_ip, client_ip = addresses(tag)
    with ns.in_root():
        root_fd = open_tun(root_if)
        sh("ip", "link", "set", root_if, "mtu", "1500", "txqueuelen", "10000", "up")
        sh("ip", "route", "add", f"{client_ip}/32", "dev", root_if)
        sysctl(f"net/ipv4/conf/{root_if}/route_localnet", "1")  # accept packets for 127.0.0.1
        sysctl(f"net/ipv6/conf/{root_if}/disable_ipv6", "1")
    client_fd = open_tun(client_if)
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "set", client_if, "mtu", "1500", "txqueuelen", "10000", "up")
    sysctl(f"net/ipv6/conf/{client_if}/disable_ipv6", "1")
    for key in ("route_localnet", "accept_local"):  # 127.0.0.1 on both ends of a non-loopback device
        sysctl(f"net/ipv4/conf/{client_if}/{key}", "1")
    sh("ip", "route", "add", "default", "dev", client_if, "src", "127.0.0.1", "table", str(ROUTE_TABLE))
    sh("ip", "rule", "add", "pref", "1000", "lookup", "local")  # let our port rules come before `local`
    sh("ip", "rule", "del", "pref", "0")
    ready = {
        "mechanism": "tun",
        "loopback_source": True,
        "netns": ns.path,
        "root_if": root_if,
        "client_if": client_if,
        "client_address_seen_by_server": client_ip,
        "mtu": 1500,
        "congestion_control": ns.congestion,
        "split": "RTT/2 each way (delay line)",
    }
    return root_fd, client_fd, ready


def setup_netem(ns: Namespaces, tag: int) -> dict[str, Any]:
    """veth pair: client 198.18.x.2 reaches 127.0.0.1 via root's 198.18.x.1 (netem added by set_rtt)."""
    root_if, client_if = f"cbr{tag}", f"cbc{tag}"
    root_ip, client_ip = addresses(tag)
    sh("ip", "link", "add", client_if, "type", "veth", "peer", "name", root_if)
    sh("ip", "link", "set", root_if, "netns", f"/proc/{os.getpid()}/fd/{ns.root}")
    with ns.in_root():
        sh("ip", "addr", "add", f"{root_ip}/30", "dev", root_if)
        sh("ip", "link", "set", root_if, "up")
        sysctl(f"net/ipv4/conf/{root_if}/route_localnet", "1")
    sh("ip", "addr", "add", f"{client_ip}/30", "dev", client_if)
    sh("ip", "link", "set", client_if, "up")  # lo stays down: 127.0.0.0/8 is not local in here
    sysctl(f"net/ipv4/conf/{client_if}/route_localnet", "1")
    sh("ip", "route", "add", "127.0.0.0/8", "via", root_ip, "dev", client_if, "src", client_ip)
    return {
        "mechanism": "netem",
        "loopback_source": False,
        "netns": ns.path,
        "root_if": root_if,
        "client_if": client_if,
        "client_address_seen_by_server": client_ip,
        "congestion_control": ns.congestion,
        "split": "RTT/2 each way (netem on both veth ends)",
    }


def set_netem(ns: Namespaces, ready: dict[str, Any], rtt_ms: float) -> None:
    """Replace (or remove, at 0) the netem qdisc on both veth ends; a large limit so nothing drops."""
    for side, device in (("root", ready["root_if"]), ("client", ready["client_if"])):
        context = ns.in_root() if side == "root" else contextlib.nullcontext()
        with context:
            if rtt_ms <= 0:
                command = ["tc", "qdisc", "del", "dev", device, "root"]
                subprocess.run(command, capture_output=True, check=False)  # fails when none is set
            else:
                sh(
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    device,
                    "root",
                    "netem",
                    "delay",
                    f"{rtt_ms / 2:g}ms",
                    "limit",
                    "100000",
                )


def tcp_active_opens() -> int:
    """The namespace's TCP ActiveOpens counter (connect() calls) from /proc/net/snmp."""
    lines = [
        line.split()
        for line in Path("/proc/self/net/snmp").read_text().splitlines()
        if line.startswith("Tcp:")
    ]
    return int(lines[1][lines[0].index("ActiveOpens")])


def _fix_checksum(packet: bytearray, at: int, old: bytes, new: bytes) -> None:
    """RFC 1624 incremental update of the 16-bit one's-complement checksum at ``at``."""
    total = ~int.from_bytes(packet[at : at + 2], "big") & 0xFFFF
    for i in (0, 2):
        total += (~int.from_bytes(old[i : i + 2], "big") & 0xFFFF) + int.from_bytes(new[i : i + 2], "big")
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    packet[at : at + 2] = (~total & 0xFFFF).to_bytes(2, "big")


def rewrite_address(packet: bytearray, offset: int, new: bytes) -> None:
    """Replace the IPv4 source (offset 12) or destination (16), fixing the IP and TCP/UDP checksums."""
    old = bytes(packet[offset : offset + 4])
    if old == new:
        return
    packet[offset : offset + 4] = new
    _fix_checksum(packet, 10, old, new)
    ihl = (packet[0] & 0x0F) * 4
    if int.from_bytes(packet[6:8], "big") & 0x1FFF:
        return  # a later fragment: no transport header in it
    if packet[9] == 6 and len(packet) >= ihl + 18:  # TCP
        _fix_checksum(packet, ihl + 16, old, new)
    udp_checksum = packet[ihl + 6 : ihl + 8] if packet[9] == 17 else b"\0\0"  # 0: UDP without checksum
    if udp_checksum != b"\0\0" and len(packet) >= ihl + 8:
        _fix_checksum(packet, ihl + 6, old, new)


def checksum_delta(old: bytes, new: bytes) -> int:
    """The one's-complement sum that turns a checksum over ``old`` into one over ``new`` (RFC 1624)."""
    total = sum(
        (~int.from_bytes(old[i : i + 2], "big") & 0xFFFF) + int.from_bytes(new[i : i + 2], "big")
        for i in (0, 2)
    )
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _add_delta(packet: bytearray, at: int, delta: int) -> None:
    total = (~((packet[at] << 8) | packet[at + 1]) & 0xFFFF) + delta
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    value = ~total & 0xFFFF
    packet[at], packet[at + 1] = value >> 8, value & 0xFF


def translate(packet: bytearray, offset: int, new: bytes, delta: int) -> None:
    """:func:`rewrite_address` for a known old address: ``delta`` from :func:`checksum_delta` (faster)."""
    packet[offset : offset + 4] = new
    _add_delta(packet, 10, delta)
    ihl = (packet[0] & 0x0F) * 4
    if packet[6] & 0x1F or packet[7]:
        return  # a later fragment: no transport header in it
    if packet[9] == 6 and len(packet) >= ihl + 18:
        _add_delta(packet, ihl + 16, delta)
    elif packet[9] == 17 and len(packet) >= ihl + 8 and (packet[ihl + 6] or packet[ihl + 7]):
        _add_delta(packet, ihl + 6, delta)


class DelayLine:
    """Hold each packet ``delay`` seconds in its direction, in arrival order; translate addresses.

    up: client namespace -> root (source 127.0.0.1 becomes the client address);
    down: root -> client namespace (destination client address becomes 127.0.0.1).
    """

    def __init__(self, root_fd: int, client_fd: int, client_ip: str) -> None:
        self.root_fd, self.client_fd = root_fd, client_fd
        self.client_ip = socket.inet_aton(client_ip)
        self.up_delta = checksum_delta(LOOPBACK, self.client_ip)
        self.down_delta = checksum_delta(self.client_ip, LOOPBACK)
        self.delay = 0.0
        self.queues: dict[int, deque[tuple[float, bytearray]]] = {root_fd: deque(), client_fd: deque()}
        self.counters = self._zero()
        self.opens = tcp_active_opens()
        self.cpu = time.process_time()

    @staticmethod
    def _zero() -> dict[str, int]:
        keys = ("up_packets", "up_bytes", "down_packets", "down_bytes", "syns", "max_queue", "write_errors")
        return dict.fromkeys(keys, 0)

    def take_stats(self) -> dict[str, Any]:
        """Counters since the last call, the namespace's new TCP connections and this line's CPU time."""
        opens, cpu = tcp_active_opens(), time.process_time()
        stats: dict[str, Any] = {**self.counters, "connections": opens - self.opens}
        stats["line_cpu_s"] = round(cpu - self.cpu, 3)
        self.counters, self.opens, self.cpu = self._zero(), opens, cpu
        return stats

    def read(self, fd: int, now: float) -> None:
        """Drain one TUN device into the opposite direction's queue."""
        up = fd == self.client_fd
        out = self.root_fd if up else self.client_fd
        queue, counters = self.queues[out], self.counters
        while True:
            try:
                packet = bytearray(os.read(fd, 65536))
            except BlockingIOError:
                break
            if not packet or packet[0] >> 4 != 4:
                continue  # IPv4 only (IPv6 is off on both devices)
            if up:
                if packet[12:16] == LOOPBACK:
                    translate(packet, 12, self.client_ip, self.up_delta)
                else:
                    rewrite_address(packet, 12, self.client_ip)
                ihl = (packet[0] & 0x0F) * 4
                if packet[9] == 6 and len(packet) > ihl + 13 and packet[ihl + 13] & 0x12 == 0x02:
                    counters["syns"] += 1
                counters["up_packets"] += 1
                counters["up_bytes"] += len(packet)
            else:
                if packet[16:20] != self.client_ip:
                    continue
                translate(packet, 16, LOOPBACK, self.down_delta)
                counters["down_packets"] += 1
                counters["down_bytes"] += len(packet)
            queue.append((now + self.delay, packet))
            counters["max_queue"] = max(counters["max_queue"], len(queue))

    def flush(self, now: float) -> float | None:
        """Write every packet that is due; return seconds until the next one (None: queues empty)."""
        wait = None
        for fd, queue in self.queues.items():
            while queue and queue[0][0] <= now:
                try:
                    os.write(fd, queue.popleft()[1])
                except OSError:
                    self.counters["write_errors"] += 1
            if queue:
                due = queue[0][0] - now
                wait = due if wait is None else min(wait, due)
        return wait


class Control:
    """JSON-line requests on stdin, answers on stdout; EOF on stdin means: exit."""

    def __init__(self) -> None:
        self.buffer = b""

    def read(self) -> list[dict[str, Any]] | None:
        data = os.read(0, 65536)
        if not data:
            return None
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    @staticmethod
    def answer(payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()


def serve_tun(ns: Namespaces, tag: int) -> None:
    root_fd, client_fd, ready = setup_tun(ns, tag)
    line = DelayLine(root_fd, client_fd, ready["client_address_seen_by_server"])
    control = Control()
    Control.answer(ready)
    while True:
        wait = line.flush(time.monotonic())
        readable, _, _ = select.select([root_fd, client_fd, 0], [], [], wait)
        now = time.monotonic()
        for fd in readable:
            if fd != 0:
                line.read(fd, now)
                continue
            requests = control.read()
            if requests is None:
                return
            for request in requests:
                Control.answer(_tun_request(line, request))


def _tun_request(line: DelayLine, request: dict[str, Any]) -> dict[str, Any]:
    try:
        if request["op"] == "rtt":
            line.delay = request["ms"] / 2000
            return {"rtt_ms": request["ms"]}
        if request["op"] == "expose":
            port = int(request["port"])
            sh(
                "ip",
                "rule",
                "add",
                "pref",
                "10",
                "iif",
                "lo",
                "ipproto",
                "tcp",
                "dport",
                str(port),
                "lookup",
                str(ROUTE_TABLE),
            )
            return {"port": port}
        if request["op"] == "stats":
            return line.take_stats()
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        return {"error": str(exc)}
    return {"error": f"unknown op {request.get('op')!r}"}


def serve_netem(ns: Namespaces, tag: int) -> None:
    ready = setup_netem(ns, tag)
    control = Control()
    Control.answer(ready)
    opens = tcp_active_opens()
    while (requests := control.read()) is not None:
        for request in requests:
            try:
                if request["op"] == "rtt":
                    set_netem(ns, ready, request["ms"])
                    Control.answer({"rtt_ms": request["ms"]})
                elif request["op"] == "expose":
                    Control.answer({"port": int(request["port"])})
                else:
                    now = tcp_active_opens()
                    Control.answer({"connections": now - opens})
                    opens = now
            except (RuntimeError, OSError) as exc:
                Control.answer({"error": str(exc)})


class Relay:
    """asyncio TCP relay: each direction's bytes are written ``delay`` seconds after they were read."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.counters = {"connections": 0, "up_bytes": 0, "down_bytes": 0}

    async def listen(self, upstream_port: int) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):  # cancelled at exit
                await self.connection(reader, writer, upstream_port)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    async def connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, upstream_port: int
    ) -> None:
        self.counters["connections"] += 1
        accepted = time.monotonic()
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        # A real client's first byte leaves one RTT (SYN, SYN-ACK) after connect() and arrives RTT/2
        # later: 3 x RTT/2 after the accept, which the relay's loopback accept does not cost.
        handshake_done = accepted + 3 * self.delay
        await asyncio.gather(
            self.pump(client_r, server_w, "up_bytes", handshake_done),
            self.pump(server_r, client_w, "down_bytes", 0.0),
            return_exceptions=True,
        )
        for writer in (client_w, server_w):
            writer.close()

    async def pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: str, not_before: float
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                pause = max(due, not_before) - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        task = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                self.counters[counter] += len(data)
                queue.put_nowait((time.monotonic() + self.delay, data))
        finally:
            queue.put_nowait((time.monotonic() + self.delay, b""))
            await task


async def serve_relay_async() -> None:
    relay = Relay()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    Control.answer({"mechanism": "relay", "loopback_source": True, "split": "RTT/2 each way (relay)"})
    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "rtt":
            relay.delay = request["ms"] / 2000
            Control.answer({"rtt_ms": request["ms"]})
        elif request["op"] == "expose":
            Control.answer({"port": await relay.listen(int(request["port"]))})
        elif request["op"] == "stats":
            stats, relay.counters = relay.counters, dict.fromkeys(relay.counters, 0)
            Control.answer(stats)
        else:
            Control.answer({"error": f"unknown op {request['op']!r}"})


def serve(mechanism: str) -> None:
    """The helper process: build the link, print its description, obey stdin until EOF."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the benchmark, which then closes us
    if mechanism == "relay":
        asyncio.run(serve_relay_async())
        return
    tag = os.getpid()
    ns = Namespaces()
    if mechanism == "tun":
        serve_tun(ns, tag)
    elif mechanism == "netem":
        serve_netem(ns, tag)
    else:
        raise SystemExit(f"unknown mechanism {mechanism!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("capabilities", help="try netns/netem/TUN in a throw-away namespace (JSON)")
    serve_parser = sub.add_parser("serve", help="build a link and obey stdin")
    serve_parser.add_argument("mechanism", choices=MECHANISMS)
    args = parser.parse_args(argv)
    if args.command == "capabilities":
        print(json.dumps(probe_capabilities()))
    else:
        serve(args.mechanism)


if __name__ == "__main__":
    main()
