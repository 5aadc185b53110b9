"""A client->server path with a chosen round-trip time, for the benchmarks' WAN runs (issue 15).

    with wan_link("auto") as link:            # the servers keep listening on 127.0.0.1 as always
        port = link.expose(sandbox_port)      # the port a client dials on 127.0.0.1 (same port, or a relay's)
        link.set_rtt(80)                      # RTT/2 added in each direction
        subprocess.run(link.wrap([python, "child.py", ...]))   # the client runs behind the link
        print(link.describe(), link.probe(port, ca_bundle=...))  # the RTT obtained, measured

Mechanisms, in the order ``auto`` tries them (the first that works on this machine is used, and every
benchmark prints which one it was):

``netem``  The client runs in a network namespace of its own, joined to ours by a veth pair; ``tc netem``
           delays each direction by RTT/2 on the sending end. The client reaches 127.0.0.1 through the veth
           (a route plus ``route_localnet``), so URLs and TLS certificates are unchanged, but its own
           address is 198.18.x.2, which gRPC's ``local_channel_credentials`` refuses (``loopback_source``
           is False); ``auto`` skips it when the caller needs a loopback source.
``tun``    The same namespace, joined by two TUN devices instead, with this module's user-space delay line
           between them: each IP packet is held RTT/2 in its direction (order kept, nothing dropped). The
           line also translates addresses so that inside the namespace both ends are 127.0.0.1 (gRPC's local
           credentials work) while our side sees 198.18.x.2. Real TCP runs end to end: handshake, slow
           start, MTU 1500, ACK clocking, all of it delayed. Costs CPU: a few microseconds per packet.
``relay``  No namespaces (no root, no CAP_NET_ADMIN): a TCP relay on 127.0.0.1 that holds each direction's
           bytes for RTT/2 and forwards them in order. It relays bytes, so TLS stays end to end. It cannot
           delay the kernel's TCP handshake, so the first bytes of a connection wait one extra RTT instead;
           TCP's windows see a loopback peer (no slow start over the long path).

Clean-up: the namespace is anonymous (held by the helper process, no ``/run/netns`` entry), the TUN
devices close with the helper's file descriptors, and a veth pair dies with its namespace. The helper is
killed by the kernel when the benchmark dies (``PR_SET_PDEATHSIG``), so even ``kill -9`` leaves neither a
namespace nor a link behind; ``wan_link`` also turns SIGTERM into a normal exit while it is open.

Run directly: ``python benchmarks/_network.py capabilities`` says what this machine supports;
``python benchmarks/_network.py demo --rtt-ms 20`` times connects through a link to a throw-away server.
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
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

MECHANISMS = ("netem", "tun", "relay")
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
ROUTE_TABLE = 100  # the client namespace's table that sends exposed ports over the link
LOOPBACK = socket.inet_aton("127.0.0.1")
HERE = Path(__file__).resolve()


# ============================================================================ the parent's side
class Link:
    """A running link helper: the client side of the path is whatever :meth:`wrap` starts.

    :param process: the helper (``python _network.py serve ...``), talking JSON lines on stdin/stdout.
    :param ready: its first line: mechanism, devices, addresses, congestion control.
    """

    def __init__(self, process: subprocess.Popen[str], ready: dict[str, Any]) -> None:
        self.process, self.ready = process, ready
        self.mechanism: str = ready["mechanism"]
        self.loopback_source: bool = ready["loopback_source"]
        self.rtt_ms = 0.0

    def _call(self, **request: Any) -> dict[str, Any]:
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("the link helper has no pipes")
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the link helper exited (code {self.process.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"link helper: {answer['error']}")
        return answer

    def expose(self, port: int) -> int:
        """Put the server port ``port`` (on 127.0.0.1) behind the link; return the port clients dial."""
        return int(self._call(op="expose", port=port)["port"])

    def set_rtt(self, rtt_ms: float) -> None:
        """Delay each direction by ``rtt_ms / 2`` from now on."""
        self._call(op="rtt", ms=float(rtt_ms))
        self.rtt_ms = float(rtt_ms)

    def stats(self) -> dict[str, Any]:
        """Counters since the last call (tun: packets, bytes, SYNs seen; relay: connections, bytes)."""
        return self._call(op="stats")

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run as a client behind the link (inside the namespace, or unchanged for the relay)."""
        if self.mechanism == "relay":
            return list(argv)
        return [shutil.which("nsenter") or "nsenter", f"--net={self.ready['netns']}", "--", *argv]

    def describe(self) -> str:
        """One line naming the mechanism and how the delay is applied, for the benchmark's output."""
        return describe(self.ready, self.rtt_ms)

    def probe(self, port: int, *, ca_bundle: str | None = None, http: bool = True, count: int = 7) -> dict:
        """Measure the path from the client side: TCP connect times and small keep-alive HTTP round trips."""
        command = [sys.executable, str(HERE), "probe", "--port", str(port), "--count", str(count)]
        if ca_bundle:
            command += ["--ca", ca_bundle]
        if not http:
            command.append("--no-http")
        done = subprocess.run(self.wrap(command), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"RTT probe failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        """Stop the helper (closing its stdin asks it to exit); the namespace and devices go with it."""
        with contextlib.suppress(OSError):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def describe(ready: dict[str, Any], rtt_ms: float) -> str:
    """The mechanism line every WAN benchmark prints."""
    half = f"{rtt_ms / 2:g} ms"
    mechanism = ready["mechanism"]
    if mechanism == "netem":
        return (
            f"link: netem - client in its own network namespace, veth {ready['client_if']}<->"
            f"{ready['root_if']}, tc netem delay {half} on each end (RTT {rtt_ms:g} ms), "
            f"TCP congestion control {ready['congestion_control']}"
        )
    if mechanism == "tun":
        return (
            f"link: tun - client in its own network namespace, TUN {ready['client_if']}<->"
            f"{ready['root_if']} through a user-space delay line, {half} each way (RTT {rtt_ms:g} ms), "
            f"MTU {ready['mtu']}, TCP congestion control {ready['congestion_control']} "
            "(tc netem is not available here)"
        )
    return (
        f"link: relay - TCP relay on 127.0.0.1 holding each direction's bytes {half} (RTT {rtt_ms:g} ms), "
        "TLS end to end, first bytes of each connection held one extra RTT for the handshake; "
        "no network namespaces here"
    )


def capabilities() -> dict[str, Any]:
    """What this machine allows, tried in a throw-away namespace: {netns, netem, tun, errors}."""
    done = subprocess.run(
        [sys.executable, str(HERE), "capabilities"], capture_output=True, text=True, timeout=60, check=False
    )
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"netns": False, "netem": False, "tun": False, "errors": {"probe": done.stderr[-500:]}}


def choose_mechanism(requested: str = "auto", need_loopback_source: bool = False) -> tuple[str, dict]:
    """The mechanism to use and the capability report behind the choice."""
    caps = capabilities()
    if requested != "auto":
        return requested, caps
    if caps["netns"] and caps["netem"] and not need_loopback_source:
        return "netem", caps
    if caps["netns"] and caps["tun"]:
        return "tun", caps
    return "relay", caps


@contextmanager
def wan_link(mechanism: str = "auto", *, need_loopback_source: bool = False) -> Iterator[Link]:
    """Start a link helper; yield the :class:`Link`; stop it on exit, Ctrl-C and SIGTERM included.

    :param mechanism: ``auto``, ``netem``, ``tun`` or ``relay`` (see the module docstring).
    :param need_loopback_source: the client must see 127.0.0.1 as its own address (gRPC local credentials).
    """
    chosen, caps = choose_mechanism(mechanism, need_loopback_source)
    process = subprocess.Popen(
        [sys.executable, str(HERE), "serve", chosen],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # so `finally` blocks run on SIGTERM too
    link = None
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line:
            process.wait(timeout=10)
            raise RuntimeError(f"the {chosen} link did not start (exit {process.returncode}); see stderr")
        ready = json.loads(line)
        ready["capabilities"] = caps
        link = Link(process, ready)
        yield link
    finally:
        if link is not None:
            link.close()
        elif process.poll() is None:
            process.kill()
            process.wait()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


# ============================================================================ the helper's side
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


class DelayLine:
    """Hold each packet ``delay`` seconds in its direction, in arrival order; translate addresses.

    up: client namespace -> root (source 127.0.0.1 becomes the client address);
    down: root -> client namespace (destination client address becomes 127.0.0.1).
    """

    def __init__(self, root_fd: int, client_fd: int, client_ip: str) -> None:
        self.root_fd, self.client_fd = root_fd, client_fd
        self.client_ip = socket.inet_aton(client_ip)
        self.delay = 0.0
        self.queues: dict[int, deque[tuple[float, bytes]]] = {root_fd: deque(), client_fd: deque()}
        self.counters = self._zero()
        self.opens = tcp_active_opens()

    @staticmethod
    def _zero() -> dict[str, int]:
        keys = ("up_packets", "up_bytes", "down_packets", "down_bytes", "syns", "max_queue", "write_errors")
        return dict.fromkeys(keys, 0)

    def take_stats(self) -> dict[str, int]:
        opens = tcp_active_opens()
        stats, self.counters = self.counters, self._zero()
        stats["connections"], self.opens = opens - self.opens, opens
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
                rewrite_address(packet, 12, self.client_ip)
                ihl = (packet[0] & 0x0F) * 4
                if packet[9] == 6 and len(packet) > ihl + 13 and packet[ihl + 13] & 0x12 == 0x02:
                    counters["syns"] += 1
                counters["up_packets"] += 1
                counters["up_bytes"] += len(packet)
            else:
                if packet[16:20] != self.client_ip:
                    continue
                rewrite_address(packet, 16, LOOPBACK)
                counters["down_packets"] += 1
                counters["down_bytes"] += len(packet)
            queue.append((now + self.delay, bytes(packet)))
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


# ============================================================================ the RTT probe
def _http_round_trip(sock: socket.socket | ssl.SSLSocket, stream: IO[bytes]) -> float:
    """One keep-alive GET of a path nobody serves (a 404 costs the server next to nothing)."""
    started = time.perf_counter()
    sock.sendall(b"GET /__rtt_probe__ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
    length = 0
    while (header := stream.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    stream.read(length)
    return (time.perf_counter() - started) * 1000


def probe(port: int, ca: str | None, count: int, http: bool) -> dict[str, Any]:
    """TCP connect times to 127.0.0.1:port, then (``http``) TLS setup and keep-alive GET round trips."""
    connects = []
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=30):
            connects.append((time.perf_counter() - started) * 1000)
    result: dict[str, Any] = {"connect_ms": connects, "connect_median_ms": statistics.median(connects)}
    if not http:
        return result
    started = time.perf_counter()
    sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=30)
    if ca:
        sock = ssl.create_default_context(cafile=ca).wrap_socket(sock, server_hostname="127.0.0.1")
    setup = (time.perf_counter() - started) * 1000
    with sock, sock.makefile("rb") as stream:
        first = _http_round_trip(sock, stream)
        trips = [_http_round_trip(sock, stream) for _ in range(count)]
    result.update(
        setup_ms=setup,
        first_request_ms=first,
        request_ms=trips,
        request_median_ms=statistics.median(trips),
        tls=bool(ca),
    )
    return result


def format_probe(result: dict[str, Any]) -> str:
    """``measured RTT: ...`` for the benchmark's output."""
    text = f"measured: TCP connect median {result['connect_median_ms']:.1f} ms"
    if "request_median_ms" in result:
        text += (
            f", keep-alive HTTP{'S' if result['tls'] else ''} round trip median "
            f"{result['request_median_ms']:.1f} ms (min {min(result['request_ms']):.1f}), "
            f"new connection set-up {result['setup_ms']:.1f} ms"
        )
    return text


# ============================================================================ command line
def _demo(mechanism: str, rtts: list[float]) -> None:
    """A throw-away HTTP server on 127.0.0.1 and the probe through a link at each RTT."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the sandbox

        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # the default backlog of 5 drops the SYNs of the probe's quick connects

    server = Server(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with wan_link(mechanism) as link:
        port = link.expose(server.server_address[1])
        for rtt in rtts:
            link.set_rtt(rtt)
            print(link.describe())
            print("  " + format_probe(link.probe(port)))
            print(f"  link counters: {link.stats()}")
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("capabilities", help="print what this machine supports (JSON)")
    serve_parser = sub.add_parser("serve", help="the link helper (started by wan_link)")
    serve_parser.add_argument("mechanism", choices=MECHANISMS)
    probe_parser = sub.add_parser("probe", help="time connects/requests to 127.0.0.1:PORT (JSON)")
    probe_parser.add_argument("--port", type=int, required=True)
    probe_parser.add_argument("--ca", help="CA bundle: speak TLS")
    probe_parser.add_argument("--count", type=int, default=7)
    probe_parser.add_argument("--no-http", action="store_true")
    demo_parser = sub.add_parser("demo", help="probe a throw-away server through a link")
    demo_parser.add_argument("--link", default="auto", choices=("auto", *MECHANISMS))
    demo_parser.add_argument("--rtt-ms", default="0,20,80")
    args = parser.parse_args(argv)
    if args.command == "capabilities":
        print(json.dumps(probe_capabilities()))
    elif args.command == "serve":
        serve(args.mechanism)
    elif args.command == "probe":
        print(json.dumps(probe(args.port, args.ca, args.count, not args.no_http)))
    else:
        print(f"command: {' '.join(sys.argv)}")
        _demo(args.link, [float(v) for v in args.rtt_ms.split(",")])


if __name__ == "__main__":
    main()
