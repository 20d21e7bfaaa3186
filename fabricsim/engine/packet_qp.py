"""Queue pair: one transfer as an RDMA message of MTU packets, from the requester's sending side to the
responder's sequence check.

The sender hands out packets in PSN order, paced at its DCQCN rate, to the port its route starts
on. The receiver accepts only the next expected PSN: a later one is a sequence gap, answered by one
NACK per gap (go-back-N: the sender resends from the missing PSN); an ECN-marked packet is answered
by a CNP. A lost tail leaves no gap to see, so the sender waits for the retransmission timeout
(RTO, 4.096 us x 2^exponent, InfiniBand Architecture Specification), counted from the latest
acknowledged progress, and resends from the last PSN the responder had acknowledged;
``retry_count`` timeouts in a row without progress fail the queue pair. Acknowledgements are
cumulative and read from the receiver's log as of one return-path latency ago, so ACKs cost no
events; NACKs and CNPs are events. Control packets travel at the return route's latency and do not
queue (they ride a high priority).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Callable

from fabricsim.engine.packet_dcqcn import DcqcnReactionPoint
from fabricsim.units import PS_PER_S

if TYPE_CHECKING:
    from fabricsim.engine.packet_network import PacketNetwork, Port


def _nothing() -> None:
    pass


class Packet:
    """One MTU (or less) of a queue pair's message, with the route position and timing of its copy."""

    __slots__ = ("qp", "route", "hops", "psn", "payload_bytes", "hop", "tail_ps", "ecn", "ingress")

    def __init__(self, qp: QueuePair, psn: int, payload_bytes: int, tail_ps: int) -> None:
        self.qp = qp
        self.route = qp.ports  # the queue pair's, held here for each hop's lookups
        self.hops = qp.hops
        self.psn = psn
        self.payload_bytes = payload_bytes
        self.hop = 0  # index in the route of the next link to enter
        self.tail_ps = tail_ps  # when the packet's last bit is ready at the device it is in
        self.ecn = False
        self.ingress: Port | None = None  # the link it came in on, while a device holds it


class QueuePair:
    """Both ends of one reliable connection carrying one message: requester state, responder state."""

    __slots__ = ("network", "route", "ports", "hops", "source", "packets", "mtu_bytes", "last_payload_bytes",
                 "wire_header_bytes", "ack_latency_ps", "rto_ps", "retry_count", "dcqcn", "next_psn",
                 "high_psn", "next_avail_ps", "expected_psn", "nacked_psn", "ack_times_ps", "ack_psns",
                 "retries", "retry_una", "rto_version", "sent", "complete", "received_bytes", "line_rate_bps",
                 "timeouts", "resent_wire_ps", "delivered_ps", "on_sent", "on_delivered", "on_failed", "mtu_line_ps")

    def __init__(self, network: PacketNetwork, route: tuple[int, ...], nbytes: int, mtu_bytes: int,
                 wire_header_bytes: int, line_rate_bps: float | None, ack_latency_ps: int, rto_ps: int,
                 retry_count: int) -> None:
        self.network = network
        self.route = route
        self.ports = tuple(network.ports[link] for link in route)
        self.hops = len(route)
        self.source = self.ports[0]
        self.packets = max(1, -(-nbytes // mtu_bytes))
        self.mtu_bytes = mtu_bytes
        self.last_payload_bytes = nbytes - (self.packets - 1) * mtu_bytes
        self.wire_header_bytes = wire_header_bytes
        self.ack_latency_ps = ack_latency_ps
        self.rto_ps = rto_ps
        self.retry_count = retry_count
        spec = network.spec.dcqcn
        self.dcqcn = (DcqcnReactionPoint(network.loop, spec, line_rate_bps, self.has_packet)
                      if line_rate_bps is not None and spec.enabled else None)
        self.next_psn = 0
        self.high_psn = 0  # one past the highest PSN ever sent
        self.next_avail_ps = network.loop.now
        self.expected_psn = 0
        self.nacked_psn = -1
        self.ack_times_ps = [network.loop.now]
        self.ack_psns = [0]
        self.retries = 0
        self.retry_una = 0
        self.rto_version = 0
        self.sent = False
        self.complete = False
        self.received_bytes = 0
        self.line_rate_bps = line_rate_bps
        self.mtu_line_ps = self._wire_ps(mtu_bytes, line_rate_bps)  # a full packet's pacing at line rate
        self.timeouts = 0
        self.resent_wire_ps = 0
        self.delivered_ps: int | None = None
        self.on_sent: Callable[[], None] = _nothing
        self.on_delivered: Callable[[], None] = _nothing
        self.on_failed: Callable[[], None] = _nothing

    # --- requester ------------------------------------------------------------------------------

    def has_packet(self) -> bool:
        return self.next_psn < self.packets

    def next_packet(self, now_ps: int) -> Packet:
        """The packet at the go-back-N pointer; the pacing clock moves on by its wire time."""
        psn = self.next_psn
        self.next_psn = psn + 1
        payload = self.mtu_bytes if psn < self.packets - 1 else self.last_payload_bytes
        if psn < self.high_psn:
            self.source.retransmits += 1
            self.resent_wire_ps += self._wire_ps(payload, self.line_rate_bps)
        else:
            self.high_psn = psn + 1
        dcqcn = self.dcqcn
        if dcqcn is not None:
            if dcqcn.asleep_since_ps is not None:
                dcqcn.wake()
            rate_bps = dcqcn.rate_bps
            if rate_bps == self.line_rate_bps and payload == self.mtu_bytes:
                self.next_avail_ps = now_ps + self.mtu_line_ps
            else:
                self.next_avail_ps = now_ps + self._wire_ps(payload, rate_bps)
        elif self.line_rate_bps is not None:
            self.next_avail_ps = now_ps + (self.mtu_line_ps if payload == self.mtu_bytes
                                           else self._wire_ps(payload, self.line_rate_bps))
        return Packet(self, psn, payload, now_ps)

    def _wire_ps(self, payload_bytes: int, rate_bps: float | None) -> int:
        """The packet's time on the NIC's wire at ``rate_bps`` (on the first link if it has no NIC)."""
        if rate_bps is None:
            return round(payload_bytes * self.source.ps_per_byte)
        return round((payload_bytes + self.wire_header_bytes) * 8 * PS_PER_S / rate_bps)

    def left_source(self, packet: Packet) -> None:
        """The packet's last bit left the first link: the last PSN arms the RTO and marks the message sent."""
        if packet.psn != self.packets - 1 or self.complete:
            return
        self.rto_version += 1
        self.network.loop.after(self.rto_ps, self._timeout, self.rto_version)
        if not self.sent:
            self.sent = True
            self.on_sent()

    def _go_back(self, psn: int) -> None:
        if psn < self.next_psn:
            self.next_psn = psn
            self.network.kick(self.source)

    def _nack(self, psn: int) -> None:
        if not self.complete:
            self._go_back(psn)

    def _cnp(self, _arg: object = None) -> None:
        self.source.cnps += 1
        if self.dcqcn is not None and not self.complete:
            self.dcqcn.on_cnp()

    def _timeout(self, version: int) -> None:
        if version != self.rto_version or self.complete:
            return
        loop = self.network.loop
        index = bisect_right(self.ack_times_ps, loop.now - self.ack_latency_ps) - 1
        una = self.ack_psns[index]
        if una > self.retry_una:  # acknowledged progress: the timer runs from the latest ACK
            self.retry_una, self.retries = una, 0
            expiry_ps = self.ack_times_ps[index] + self.ack_latency_ps + self.rto_ps
            if expiry_ps > loop.now:
                loop.at(expiry_ps, self._timeout, version)
                return
        self.retries += 1
        self.timeouts += 1
        self.source.timeouts += 1
        if self.retries > self.retry_count:
            self._finish()
            self.on_failed()
            return
        self._go_back(una)
        self.network.loop.after(self.rto_ps, self._timeout, self.rto_version)

    def _finish(self) -> None:
        self.complete = True
        if self.dcqcn is not None:
            self.dcqcn.stop()
        self.network.retire(self)

    # --- responder ------------------------------------------------------------------------------

    def receive(self, packet: Packet, now_ps: int) -> None:
        if packet.ecn:
            self.network.loop.after(self.ack_latency_ps, self._cnp)
        psn = packet.psn
        expected_psn = self.expected_psn
        if psn == expected_psn:
            self.expected_psn = expected_psn = expected_psn + 1
            self.received_bytes += packet.payload_bytes
            self.ack_times_ps.append(now_ps)
            self.ack_psns.append(expected_psn)
            if expected_psn == self.packets and not self.complete:
                self.delivered_ps = now_ps
                self._finish()
                self.on_delivered()
        elif psn > expected_psn and self.nacked_psn != expected_psn:
            self.nacked_psn = expected_psn
            self.source.nacks += 1
            self.network.loop.after(self.ack_latency_ps, self._nack, expected_psn)
