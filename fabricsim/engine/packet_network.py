"""Packet network: every directed link is an egress port with a FIFO queue, serving packets at its rate.

A packet is an MTU of payload; on RoCE links it also carries the NIC's per-packet header bytes,
and RoCE link bandwidths (payload rates, as the flow model holds them) are turned back into line
rates, so both models count header overhead the same way. Ports forward cut-through: a packet may
start on the next link one link latency plus one forwarding latency after it started on the
previous one, and cannot finish before its tail has arrived, so an uncontended transfer takes
exactly the flow model's route latency + bytes / bottleneck rate.

Devices hold the packets queued at their ports. An Ethernet switch shares one buffer among its
ports: an arriving packet that does not fit is dropped, unless PFC is on, in which case each
ingress port pauses its upstream port when the bytes held from it pass XOFF (the pause frame takes
the link latency to arrive; a packet already on the wire finishes), resumes it below XON, and
draws on a per-ingress headroom (2 x rate x delay + 2 MTU, reference/formulas.md) meanwhile.
Pauses thus spread hop by hop and block every flow behind the paused port. NICs and in-host
switches never drop: they apply the same backpressure with the headroom as threshold, which keeps
their egress busy and stops the sending queue pairs when the wire ahead is paused. Switch egress
ports mark ECN by RED on the queue a packet leaves (Kmin, Kmax, Pmax scaled with the port's rate).
A packet reaching its GPU may be lost at random (impairments.loss.rate). Queue pairs live in
``packet_qp``; ports at a route's start pull packets from them round-robin when free.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from heapq import heappush

import numpy as np

from fabricsim.config import NicSpec, PacketSpec
from fabricsim.engine.counters import queue_depths
from fabricsim.engine.packet_dcqcn import REFERENCE_RATE_BPS
from fabricsim.engine.packet_loop import EventLoop
from fabricsim.engine.packet_qp import Packet, QueuePair
from fabricsim.fabric.graph import Fabric, Link
from fabricsim.records import PortCounters
from fabricsim.units import PS_PER_S

ROCE = "roce"
_UNIFORM_BATCH = 4096


class DeviceBuffer:
    """The bytes a forwarding device holds, against its capacity (infinite for NICs and in-host switches)."""

    __slots__ = ("capacity_bytes", "used_bytes")

    def __init__(self, capacity_bytes: float) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0


class Port:
    """The egress side of one directed link, and the ingress state its downstream device keeps for it."""

    __slots__ = (
        "name", "kind", "ps_per_byte", "wire_ps", "header_bytes", "latency_ps", "hop_ps", "buffer", "queue",
        "queued_bytes", "busy", "current", "current_ingress", "paused", "paused_since_ps", "sources", "next_source",
        "wake_ps", "kmin_bytes", "kmax_bytes", "pmax", "held_bytes", "xoff_bytes", "xon_bytes",
        "limit_bytes", "pausing", "depth_samples", "tx_packets", "tx_bytes", "pause_frames", "paused_ps",
        "ecn_marks", "cnps", "nacks", "drops", "losses", "retransmits", "timeouts")

    def __init__(self, link: Link, line_rate_bps: float, header_bytes: int, hop_ps: int,
                 buffer: DeviceBuffer | None) -> None:
        self.name = link.name
        self.kind = link.kind
        self.ps_per_byte = 8 * PS_PER_S / line_rate_bps
        self.wire_ps: dict[int, int] = {}  # a packet's time on the wire by its bytes (a few sizes)
        self.header_bytes = header_bytes
        self.latency_ps = link.latency_ps
        self.hop_ps = hop_ps
        self.buffer = buffer
        self.queue: deque[Packet] = deque()
        self.queued_bytes = 0
        self.busy = False
        # the packet on the wire and the ingress its bytes count against: cut-through may have
        # moved the packet on to the next device before its tail leaves this port
        self.current: Packet | None = None
        self.current_ingress: Port | None = None
        self.paused = False
        self.paused_since_ps = 0
        self.sources: list[QueuePair] = []
        self.next_source = 0
        self.wake_ps = math.inf  # when a wake is due for a queue pair's pacing (inf: none)
        self.kmin_bytes = math.inf  # inf: this port does not mark ECN
        self.kmax_bytes = 0.0
        self.pmax = 0.0
        # ingress accounting at the downstream device, for the packets that came over this link
        self.held_bytes = 0
        self.xoff_bytes = math.inf  # inf: the downstream device never pauses this port
        self.xon_bytes = 0.0
        self.limit_bytes = math.inf
        self.pausing = False
        self.depth_samples = array("q")  # the queue each arriving packet found, bytes
        self.tx_packets = self.tx_bytes = self.pause_frames = self.paused_ps = 0
        self.ecn_marks = self.cnps = self.nacks = self.drops = self.losses = self.retransmits = 0
        self.timeouts = 0


class PacketNetwork:
    """One trial's ports, device buffers and queue pairs on the fabric, driven by an EventLoop."""

    def __init__(self, fabric: Fabric, nic: NicSpec, spec: PacketSpec, loss_rate: float,
                 rng: np.random.Generator, loop: EventLoop | None = None) -> None:
        self.fabric = fabric
        self.nic = nic
        self.spec = spec
        self.loop = loop or EventLoop()
        self._heap, self._seq = self.loop.heap, self.loop.seq  # the hot paths push events directly
        # bound once: a bound method made per push would be an allocation per event
        self._arrive_action, self._transmitted_action, self._wake_action = self._arrive, self._transmitted, self._wake
        self.rng = rng
        self.loss_rate = loss_rate
        self._until_loss = self._draw_until_loss()
        self._uniforms = rng.random(_UNIFORM_BATCH).tolist()
        self.buffers = {name: self._buffer_of(name) for name in fabric.devices}
        self.ports = [self._port_of(link) for link in fabric.links]
        self.queue_pairs: list[QueuePair] = []  # every one opened, in order
        self._active_on = [0] * len(self.ports)  # queue pairs not yet done, per link (adaptive routing)
        for link in fabric.links:
            self._configure_ingress(link)

    # --- building -------------------------------------------------------------------------------

    def is_ethernet_switch(self, device: str) -> bool:
        kind = self.fabric.devices[device].kind
        return kind not in ("gpu", "nic") and any(link.kind == ROCE for link in self.fabric.out_links(device))

    def _buffer_of(self, device: str) -> DeviceBuffer | None:
        if self.fabric.devices[device].kind == "gpu":
            return None
        return DeviceBuffer(self.spec.buffer_bytes if self.is_ethernet_switch(device) else math.inf)

    def line_rate_bps(self, link: Link) -> float:
        """RoCE links hold payload rates; the wire carries MTU + header in the same time."""
        if link.kind != ROCE:
            return link.bandwidth_bps
        return link.bandwidth_bps * (self.nic.mtu_bytes + self.nic.header_bytes) / self.nic.mtu_bytes

    def _port_of(self, link: Link) -> Port:
        rate_bps = self.line_rate_bps(link)
        header = self.nic.header_bytes if link.kind == ROCE else 0
        hop_ps = link.latency_ps + self.fabric.devices[link.dst].latency_ps
        port = Port(link, rate_bps, header, hop_ps, self.buffers[link.src])
        ecn = self.spec.ecn
        if ecn.enabled and self.is_ethernet_switch(link.src):
            scale = rate_bps / REFERENCE_RATE_BPS
            port.kmin_bytes, port.kmax_bytes, port.pmax = ecn.kmin_bytes * scale, ecn.kmax_bytes * scale, ecn.pmax
        return port

    def headroom_bytes(self, link: Link) -> float:
        """What may still arrive after a pause is sent: 2 x rate x (latency + forwarding) + 2 MTU packets."""
        rate_bps = self.line_rate_bps(link)
        delay_ps = 2 * link.latency_ps + self.fabric.devices[link.dst].latency_ps
        return rate_bps * delay_ps / 8 / PS_PER_S + 2 * (self.nic.mtu_bytes + self.nic.header_bytes)

    def _configure_ingress(self, link: Link) -> None:
        port = self.ports[link.index]
        if self.fabric.devices[link.dst].kind == "gpu":
            return
        pfc = self.spec.pfc
        headroom = self.headroom_bytes(link)
        if not self.is_ethernet_switch(link.dst):
            port.xoff_bytes = headroom
        elif pfc.enabled:
            port.xoff_bytes, port.limit_bytes = pfc.xoff_bytes, pfc.xoff_bytes + headroom
        else:
            return
        port.xon_bytes = max(0.0, port.xoff_bytes - pfc.resume_offset_bytes)

    # --- queue pairs ----------------------------------------------------------------------------

    def queue_pair(self, links: tuple[int, ...], nbytes: int, mtu_bytes: int, ack_latency_ps: int, rto_ps: int,
                   retry_count: int) -> QueuePair:
        """A queue pair on a route; it paces at the line rate of the route's first RoCE link (its NIC)."""
        nic_link = next((self.fabric.links[i] for i in links if self.fabric.links[i].kind == ROCE), None)
        if nic_link is None:
            return QueuePair(self, links, nbytes, mtu_bytes, 0, None, ack_latency_ps, rto_ps, retry_count)
        return QueuePair(self, links, nbytes, mtu_bytes, self.nic.header_bytes, self.line_rate_bps(nic_link),
                         ack_latency_ps, rto_ps, retry_count)

    def open(self, qp: QueuePair) -> None:
        self.queue_pairs.append(qp)
        for link in qp.route:
            self._active_on[link] += 1
        qp.source.sources.append(qp)
        self.kick(qp.source)

    def retire(self, qp: QueuePair) -> None:
        for link in qp.route:
            self._active_on[link] -= 1
        sources = qp.source.sources
        sources.remove(qp)
        qp.source.next_source = 0 if not sources else qp.source.next_source % len(sources)

    def active_on(self, link: int) -> int:
        """Queue pairs with data still to deliver whose route crosses ``link``."""
        return self._active_on[link]

    def kick(self, port: Port) -> None:
        self._transmit_next(port, self.loop.now)

    def _wake(self, port: Port) -> None:
        now = self.loop.now
        if port.wake_ps == now:
            port.wake_ps = math.inf
        self._transmit_next(port, now)

    def _pull(self, port: Port, now: int) -> Packet | None:
        """Round-robin over the port's queue pairs that have a packet and whose pacing allows it now;
        if none does, the port wakes when the first one will."""
        sources = port.sources
        count = len(sources)
        start = port.next_source  # always below count
        earliest_ps = math.inf
        for step in range(count):
            index = start + step
            if index >= count:
                index -= count
            qp = sources[index]
            if qp.next_psn >= qp.packets:  # nothing to send
                continue
            avail_ps = qp.next_avail_ps
            if avail_ps <= now:
                port.next_source = index + 1 if index + 1 < count else 0
                return qp.next_packet(now)
            if avail_ps < earliest_ps:
                earliest_ps = avail_ps
        if earliest_ps < port.wake_ps:
            port.wake_ps = earliest_ps
            heappush(self._heap, (earliest_ps, next(self._seq), self._wake_action, port))
        return None

    # --- packets --------------------------------------------------------------------------------
    # The hot path: every packet-hop is one _transmit_next and two events, _arrive and _transmitted;
    # they read attributes into locals and push heap entries themselves.

    def _transmit_next(self, port: Port, now: int) -> None:
        """Start the port's next packet, if it is free: its queue (forwarded packets) first, then its
        queue pairs. The packet's arrival at the next device and the end of its transmission are events."""
        if port.busy or port.paused:
            return
        queue = port.queue
        if queue:
            packet = queue.popleft()
            nbytes = packet.payload_bytes + port.header_bytes
            queue_bytes = port.queued_bytes
            port.queued_bytes = queue_bytes - nbytes
            if queue_bytes > port.kmin_bytes:
                self._red_mark(port, packet, queue_bytes)
        elif port.sources:
            packet = self._pull(port, now)
            if packet is None:
                return
            nbytes = packet.payload_bytes + port.header_bytes
        else:
            return
        try:
            end_ps = now + port.wire_ps[nbytes]
        except KeyError:  # the port's first packet of this size
            wire_ps = port.wire_ps[nbytes] = round(nbytes * port.ps_per_byte)
            end_ps = now + wire_ps
        tail_ps = packet.tail_ps
        if tail_ps > end_ps:
            end_ps = tail_ps
        hop_ps = port.hop_ps
        packet.tail_ps = tail_ps = end_ps + hop_ps
        packet.hop = hop = packet.hop + 1
        port.busy = True
        port.current = packet
        port.current_ingress = packet.ingress
        port.tx_packets += 1
        port.tx_bytes += nbytes
        # a device forwards the head; the receiver takes the packet when its tail is in
        heap, seq = self._heap, self._seq
        heappush(heap, (tail_ps if hop == packet.hops else now + hop_ps, next(seq), self._arrive_action, packet))
        heappush(heap, (end_ps, next(seq), self._transmitted_action, port))

    def _red_mark(self, port: Port, packet: Packet, queue_bytes: int) -> None:
        if queue_bytes < port.kmax_bytes:
            chance = port.pmax * (queue_bytes - port.kmin_bytes) / (port.kmax_bytes - port.kmin_bytes)
            if self._uniform() >= chance:
                return
        if not packet.ecn:
            packet.ecn = True
            port.ecn_marks += 1

    def _transmitted(self, port: Port) -> None:
        """The port's current packet has left: its device frees the bytes, maybe resuming the ingress."""
        packet, ingress = port.current, port.current_ingress  # left in place: the next send overwrites them
        port.busy = False
        if ingress is None:  # a GPU's port: the packet has left its first link
            qp = packet.qp
            if packet.psn == qp.packets - 1:
                qp.left_source(packet)  # may open the sender's next transfer on this very port
        else:
            nbytes = packet.payload_bytes + port.header_bytes
            port.buffer.used_bytes -= nbytes
            ingress.held_bytes = held_bytes = ingress.held_bytes - nbytes
            if ingress.pausing and held_bytes <= ingress.xon_bytes:
                ingress.pausing = False
                self.loop.after(ingress.latency_ps, self._resume, ingress)
        self._transmit_next(port, self.loop.now)

    def _arrive(self, packet: Packet) -> None:
        """The packet reaches the device at the end of its last link, after that device's forwarding latency."""
        hop = packet.hop
        route = packet.route
        ingress = route[hop - 1]
        if hop == packet.hops:
            self._until_loss = until_loss = self._until_loss - 1
            if until_loss > 0:
                packet.qp.receive(packet, self.loop.now)
            else:  # lost: the count of packets to the next loss starts again
                self._until_loss = self._draw_until_loss()
                ingress.losses += 1
            return
        port = route[hop]
        nbytes = packet.payload_bytes + port.header_bytes
        buffer = port.buffer
        used_bytes = buffer.used_bytes + nbytes
        held_bytes = ingress.held_bytes + nbytes
        if used_bytes > buffer.capacity_bytes or held_bytes > ingress.limit_bytes:
            port.drops += 1
            return
        buffer.used_bytes = used_bytes
        ingress.held_bytes = held_bytes
        packet.ingress = ingress
        if held_bytes > ingress.xoff_bytes and not ingress.pausing:
            ingress.pausing = True
            self.loop.after(ingress.latency_ps, self._pause, ingress)
        queued_bytes = port.queued_bytes
        port.depth_samples.append(queued_bytes)
        port.queue.append(packet)
        port.queued_bytes = queued_bytes + nbytes
        if not port.busy and not port.paused:  # an idle port's queue was empty: the packet goes straight on
            self._transmit_next(port, self.loop.now)

    def _pause(self, port: Port) -> None:
        port.paused = True
        port.paused_since_ps = self.loop.now
        port.pause_frames += 1

    def _resume(self, port: Port) -> None:
        port.paused = False
        port.paused_ps += self.loop.now - port.paused_since_ps
        self.kick(port)

    # --- results --------------------------------------------------------------------------------

    def port_counters(self) -> tuple[PortCounters, ...]:
        """Every port's counters as of now (a pause still on counts up to now)."""
        now = self.loop.now
        return tuple(
            PortCounters(port.name, port.kind, port.tx_packets, port.tx_bytes, port.pause_frames,
                         port.paused_ps + (now - port.paused_since_ps if port.paused else 0), port.ecn_marks,
                         port.cnps, port.nacks, port.drops, port.losses, port.retransmits, port.timeouts,
                         *queue_depths(port.depth_samples))
            for port in self.ports)

    # --- random draws ---------------------------------------------------------------------------

    def _draw_until_loss(self) -> float:
        return self.rng.geometric(self.loss_rate) if self.loss_rate > 0 else math.inf

    def _uniform(self) -> float:
        if not self._uniforms:
            self._uniforms = self.rng.random(_UNIFORM_BATCH).tolist()
        return self._uniforms.pop()
