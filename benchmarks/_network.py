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
``tun``    The same namespace, joined by two TUN devices instead, with ``_link_helper.py``'s user-space
           delay line between them: each IP packet is held RTT/2 in its direction (order kept, nothing
           dropped). The line also translates addresses so that inside the namespace both ends are
           127.0.0.1 (gRPC's local credentials work) while our side sees 198.18.x.2. Real TCP runs end to
           end: handshake, slow start, MTU 1500, ACK clocking, all of it delayed. Costs CPU, ~10 us a
           packet: on a loaded 2-core box the line carries 30-35 MB/s (``demo --bulk-mb 50``), plenty for
           staging intake (50,000 records are ~2 MB gzipped) but a cap for bulk reads (1M BigQuery rows
           are ~55 MB).
``relay``  No namespaces (no root, no CAP_NET_ADMIN): a TCP relay on 127.0.0.1 that holds each direction's
           bytes for RTT/2 and forwards them in order. It relays bytes, so TLS stays end to end. It cannot
           delay the kernel's TCP handshake, so the first bytes of a connection wait one extra RTT instead;
           TCP's windows see a loopback peer (no slow start over the long path).

Clean-up: the namespace is anonymous (held by the helper process, no ``/run/netns`` entry), the TUN
devices close with the helper's file descriptors, and a veth pair dies with its namespace. The helper is
killed by the kernel when the benchmark dies (``PR_SET_PDEATHSIG``), so even ``kill -9`` leaves neither a
namespace nor a link behind; ``wan_link`` also turns SIGTERM into a normal exit while it is open.

The helper process (namespaces, devices, the delay line, the relay) is ``benchmarks/_link_helper.py``.
Run directly: ``python benchmarks/_network.py capabilities`` says what this machine supports;
``python benchmarks/_network.py demo --rtt-ms 20`` times connects through a link to a throw-away server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

MECHANISMS = ("netem", "tun", "relay")
HERE = Path(__file__).resolve()
HELPER = HERE.with_name("_link_helper.py")


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
        [sys.executable, str(HELPER), "capabilities"], capture_output=True, text=True, timeout=60, check=False
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
        [sys.executable, str(HELPER), "serve", chosen],
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


def bulk(port: int, megabytes: float) -> dict[str, float]:
    """Upload and download ``megabytes`` through the link (the demo server): the link's capacity, MB/s."""
    import http.client

    size = int(megabytes * 2**20)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    connection.request("POST", "/__bulk__", body=bytes(size))
    connection.getresponse().read()
    upload = time.perf_counter() - started
    started = time.perf_counter()
    connection.request("GET", f"/__bulk__?bytes={size}")
    received = len(connection.getresponse().read())
    download = time.perf_counter() - started
    connection.close()
    return {"upload_mb_s": megabytes / upload, "download_mb_s": received / 2**20 / download}


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
def _demo(mechanism: str, rtts: list[float], bulk_mb: float) -> None:
    """A throw-away HTTP server on 127.0.0.1 and the probe through a link at each RTT."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the sandbox

        def do_GET(self) -> None:
            size = int(self.path.partition("bytes=")[2] or 0)
            self.send_response(200 if size else 404)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(bytes(size))

        def do_POST(self) -> None:
            remaining = int(self.headers.get("Content-Length", 0))
            while remaining:
                remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
            self.send_response(204)
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
            if bulk_mb:
                command = [sys.executable, str(HERE), "bulk", "--port", str(port), "--mb", str(bulk_mb)]
                done = subprocess.run(link.wrap(command), capture_output=True, text=True, check=True)
                speeds = json.loads(done.stdout)
                print(
                    f"  bulk {bulk_mb:g} MB over one connection: upload {speeds['upload_mb_s']:.1f} MB/s, "
                    f"download {speeds['download_mb_s']:.1f} MB/s"
                )
            print(f"  link counters: {link.stats()}")
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("capabilities", help="print what this machine supports (JSON)")
    probe_parser = sub.add_parser("probe", help="time connects/requests to 127.0.0.1:PORT (JSON)")
    probe_parser.add_argument("--port", type=int, required=True)
    probe_parser.add_argument("--ca", help="CA bundle: speak TLS")
    probe_parser.add_argument("--count", type=int, default=7)
    probe_parser.add_argument("--no-http", action="store_true")
    demo_parser = sub.add_parser("demo", help="probe a throw-away server through a link")
    demo_parser.add_argument("--link", default="auto", choices=("auto", *MECHANISMS))
    demo_parser.add_argument("--rtt-ms", default="0,20,80")
    demo_parser.add_argument("--bulk-mb", type=float, default=0, help="also time a transfer of this size")
    bulk_parser = sub.add_parser("bulk", help="time an upload and a download to the demo server (JSON)")
    bulk_parser.add_argument("--port", type=int, required=True)
    bulk_parser.add_argument("--mb", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "capabilities":
        print(json.dumps(capabilities()))
    elif args.command == "probe":
        print(json.dumps(probe(args.port, args.ca, args.count, not args.no_http)))
    elif args.command == "bulk":
        print(json.dumps(bulk(args.port, args.mb)))
    else:
        print(f"command: {' '.join(sys.argv)}")
        _demo(args.link, [float(v) for v in args.rtt_ms.split(",")], args.bulk_mb)


if __name__ == "__main__":
    main()
