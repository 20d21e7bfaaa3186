"""Alpha-beta (Hockney) cost of each algorithm on an uncontended fabric where every rank has one link.

alpha is the time of one message before its first byte counts (path latency plus any per-message
software latency), beta the time per byte of the bottleneck link, S the collective's size in bytes
(``fabricsim.collectives.verify`` says which buffer that is per op). The formulas are those of
reference/formulas.md (Thakur, Rabenseifner & Gropp, IJHPCA 19(1), 2005) made exact for the
schedules built here: they include the folding steps of non-power-of-two rank counts and the
pipelining of chunks on an in-order channel, and they hold to the picosecond per message when the
pieces are equal. They are generic in the number type: Fractions in, an exact Fraction out.
PAT (``fabricsim.collectives.pat``) is priced message by message: a rank sends its messages one
after the other, message g of k_g pieces of m = S/(p c) bytes (c: PAT's own chunks) starting once the previous one is
sent and once the messages whose pieces it forwards are delivered, t_g = max(t_(g-1) + k_(g-1) m beta,
t_f + alpha + k_f m beta for its feeders f); the last one is delivered at t + alpha + k m beta.
Double binary tree is an estimate, 2 S beta + 2 lg p (alpha + S/(2c) beta): the pipelined bound of
Sanders, Speck & Traeff (2009) with a fill of 2 lg p segment steps (the two trees share each rank's
link, which no closed form captures).

The host-aware algorithms are priced on two levels, H hosts of L GPUs, alpha/beta inside a host and
across hosts (``TWO_LEVEL_COSTS``): hierarchical all-reduce exactly, 2(L - 1)(alpha_in + S/L beta_in)
plus the pipelined inter-host ring of S/L over H ranks; ring (one channel per GPU of a host, as
``fabricsim.collectives.channels`` lays them out) as the slower of its two loads, one channel's share
S/L across each NIC and the other channels' (L - 1)/L S over each NVLink. ``ring`` on one host, or
with one GPU per host, is the flat ring.
"""

from __future__ import annotations

from collections.abc import Callable

from fabricsim.collectives.pat import plan

Cost = Callable[..., object]  # (p, S, alpha, beta, chunks) -> time


def _lg(ranks: int) -> int:
    """floor(lg p): the steps of recursive halving or doubling over the folded p' = 2^lg ranks."""
    return ranks.bit_length() - 1


def _ceil_lg(ranks: int) -> int:
    return (ranks - 1).bit_length()


def _pipelined_ring(steps: int, ranks, size, alpha, beta, chunks):
    """(steps - 1) max(T + alpha, c T) + c T + alpha with T = S/(p c) beta (the ring's FIFO pipeline)."""
    chunk = size * beta / (ranks * chunks)
    return (steps - 1) * max(chunk + alpha, chunks * chunk) + chunks * chunk + alpha


def _halving_steps(ranks, size, alpha, beta):
    """Sum over steps of alpha + the largest message: blocks of m virtual ranks, the folded ones double."""
    extra = ranks - (1 << _lg(ranks))
    total, m = 0, 1
    while m < ranks - extra:
        total += alpha + (m + min(m, extra)) * size * beta / ranks
        m *= 2
    return total


def _fold(ranks, size, alpha, beta):
    """Folding to a power of two and back: 2 (alpha + S beta) unless p is one already."""
    return 2 * (alpha + size * beta) if _is_folded(ranks) else 0


def _is_folded(ranks: int) -> bool:
    return ranks & (ranks - 1) != 0


def _pat(op: str) -> Cost:
    def cost(ranks, size, alpha, beta, chunks):
        steps = plan(op, ranks, int(size))  # the size's own chunks, not the scenario's
        piece = size * beta / (ranks * steps.chunks)
        sent = 0
        for _ in range(steps.chunks):
            delivered = []
            for group, feeders in zip(steps.groups, steps.feeders):
                start = max([sent] + [delivered[feeder] for feeder in feeders])
                sent = start + len(group) * piece
                delivered.append(sent + alpha)
        return sent + alpha
    return cost


COSTS: dict[tuple[str, str], Cost] = {
    ("all_gather", "ring"): lambda p, s, a, b, c: _pipelined_ring(p - 1, p, s, a, b, c),
    ("reduce_scatter", "ring"): lambda p, s, a, b, c: _pipelined_ring(p - 1, p, s, a, b, c),
    ("all_reduce", "ring"): lambda p, s, a, b, c: _pipelined_ring(2 * (p - 1), p, s, a, b, c),
    # both rings share each rank's one link: the same bytes per link as one ring
    ("all_reduce", "bidirectional_ring"): lambda p, s, a, b, c: _pipelined_ring(2 * (p - 1), p, s, a, b, c),
    ("all_reduce", "halving_doubling"): lambda p, s, a, b, c: (
        2 * _lg(p) * a + 2 * ((1 << _lg(p)) - 1) * s * b / (1 << _lg(p)) + _fold(p, s, a, b)),
    ("all_reduce", "recursive_doubling"): lambda p, s, a, b, c: _lg(p) * (a + s * b) + _fold(p, s, a, b),
    ("all_reduce", "double_binary_tree"): lambda p, s, a, b, c: (
        2 * s * b + 2 * _lg(p) * (a + s * b / (2 * c))),
    ("reduce_scatter", "recursive_halving"): lambda p, s, a, b, c: (
        _halving_steps(p, s, a, b) + (2 * a + s * b + s * b / p if _is_folded(p) else 0)),
    ("all_gather", "recursive_doubling"): lambda p, s, a, b, c: (
        _halving_steps(p, s, a, b) + (2 * a + s * b / p + (p - 1) * s * b / p if _is_folded(p) else 0)),
    ("all_gather", "pat"): _pat("all_gather"),
    ("reduce_scatter", "pat"): _pat("reduce_scatter"),
    ("broadcast", "binomial_tree"): lambda p, s, a, b, c: _ceil_lg(p) * (a + s * b),
    ("reduce", "binomial_tree"): lambda p, s, a, b, c: _ceil_lg(p) * (a + s * b),
    ("broadcast", "ring"): lambda p, s, a, b, c: (p - 2) * (a + s * b / c) + s * b + a,
    ("reduce", "ring"): lambda p, s, a, b, c: (p - 2) * (a + s * b / c) + s * b + a,
    ("gather", "direct"): lambda p, s, a, b, c: a + (p - 1) * s * b / p,
    ("all_to_all", "direct"): lambda p, s, a, b, c: a + (p - 1) * s * b / p,
    ("send_recv", "direct"): lambda p, s, a, b, c: a + s * b,
}

COSTS.update({(op, "flat_ring"): COSTS[(op, "ring")] for op in ("all_gather", "reduce_scatter", "all_reduce")})


TwoLevelCost = Callable[..., object]  # (H, L, S, alpha_in, beta_in, alpha_out, beta_out, chunks) -> time


def _hierarchical(hosts, local, size, alpha_in, beta_in, alpha_out, beta_out, chunks):
    inside = 2 * (local - 1) * (alpha_in + size * beta_in / local) if local > 1 else 0
    across = _pipelined_ring(2 * (hosts - 1), hosts, size / local, alpha_out, beta_out, chunks) if hosts > 1 else 0
    return inside + across


def _channel_ring(hosts, local, size, alpha_in, beta_in, alpha_out, beta_out, chunks):
    steps, ranks = 2 * (hosts * local - 1), hosts * local
    across = _pipelined_ring(steps, ranks, size / local, alpha_out, beta_out, chunks)
    inside = _pipelined_ring(steps, ranks, size * (local - 1) / local, alpha_in, beta_in, chunks)
    return max(across, inside)


TWO_LEVEL_COSTS: dict[tuple[str, str], TwoLevelCost] = {
    ("all_reduce", "hierarchical"): _hierarchical,
    ("all_reduce", "ring"): _channel_ring,
}


def predicted_time(op: str, algorithm: str, ranks: int, size_bytes: int, alpha, beta, chunks: int = 1):
    """The alpha-beta time of ``op`` by ``algorithm``, in the unit of alpha (and of beta x bytes)."""
    return COSTS[(op, algorithm)](ranks, size_bytes, alpha, beta, chunks)
