"""Schedule verification: the contract every collective schedule must meet.

A collective of ``size_bytes`` S over p ranks splits S into p blocks whose sizes differ by at most one
byte (largest first, like ``numpy.array_split``) and each block into ``chunks`` pipelined chunks the
same way; block q's chunk j has piece id ``q * chunks + j``, and chunks of zero bytes are omitted.
All-to-all has p x p blocks: block ``s * p + d`` is the S/p-byte slice of rank s's buffer bound for
rank d (S is one rank's buffer). A transfer carries one piece, or ``pieces`` consecutive piece ids.

What each rank holds before and after, by op (block q, root = ``schedule.root``):
all_gather and gather: rank q holds block q; afterwards every rank (gather: the root) holds all.
reduce_scatter, all_reduce and reduce: every rank holds its own copy of every block; afterwards rank q
(all_reduce: every rank; reduce: the root) holds block q reduced over all ranks.
broadcast: the root holds every block; afterwards every rank does. all_to_all: rank s holds its blocks
s * p + d; afterwards rank d holds every block s * p + d. send_recv: the root holds every block;
afterwards rank root + 1 does.

``verify`` checks the DAG's structure and then executes it symbolically: each rank's copy of each
piece is the set of ranks whose contributions it holds (a Python int used as a bitset). A transfer
sends what its sender is guaranteed to hold by happens-before, i.e. its initial data plus the receipts
that are transitive ancestors of the transfer; ``reduce=True`` adds the payload into the receiver's
copy, ``reduce=False`` overwrites it. The final copies must match what the collective promises.
A relay (a rank past ``ranks``, ``Schedule.relays``: a switch that reduces) starts with nothing and
promises nothing; its copy of a piece starts at zero, so the first transfer into it may reduce.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricsim.collectives.schedule import Schedule, Transfer

OPS = ("all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "gather", "all_to_all", "send_recv")
ROOTED_OPS = ("broadcast", "reduce", "gather", "send_recv")


class ScheduleError(ValueError):
    """A schedule that is malformed or does not compute its collective."""


def split_bytes(total_bytes: int, parts: int) -> list[int]:
    """Sizes of ``parts`` near-equal slices of ``total_bytes``, largest first."""
    base_bytes, extra = divmod(total_bytes, parts)
    return [base_bytes + (i < extra) for i in range(parts)]


def block_bytes(op: str, ranks: int, size_bytes: int) -> list[int]:
    """Sizes of the op's blocks: p slices of S, or for all-to-all p x p (rank s's slice for rank d)."""
    shares = split_bytes(size_bytes, ranks)
    return shares * ranks if op == "all_to_all" else shares


def piece_layout(ranks: int, size_bytes: int, chunks: int, op: str = "all_reduce") -> dict[int, int]:
    """Piece id -> nbytes for every non-empty chunk of an S-byte ``op`` over ``ranks`` ranks."""
    if ranks < 2:
        raise ValueError(f"a collective needs at least 2 ranks, got {ranks}")
    if size_bytes < 0:
        raise ValueError(f"size_bytes must be >= 0, got {size_bytes}")
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    layout = {}
    for q, piece_bytes in enumerate(block_bytes(op, ranks, size_bytes)):
        for j, chunk_bytes in enumerate(split_bytes(piece_bytes, chunks)):
            if chunk_bytes:
                layout[q * chunks + j] = chunk_bytes
    return layout


def verify(schedule: Schedule) -> None:
    """Raise ``ScheduleError`` unless ``schedule`` is a well-formed DAG computing its collective."""
    _check_header(schedule)
    for index, transfer in enumerate(schedule.transfers):
        _check_transfer(schedule, index, transfer)
    if schedule.chunks is None:
        chunks = _infer_chunks(schedule, _piece_bytes(schedule))
    else:
        chunks = schedule.chunks
    layout = piece_layout(schedule.ranks, schedule.size_bytes, chunks, schedule.op)
    carried = [_carried_pieces(t, layout) for t in schedule.transfers]
    initial, expected = _initial_and_expected(schedule, layout, chunks)
    final = _execute(schedule, carried, initial)
    for (rank, piece), contributors in expected.items():
        held = final.get((rank, piece), 0)
        if held != contributors:
            raise ScheduleError(
                f"rank {rank} ends with piece {piece} holding contributions of ranks "
                f"{_ranks_of(held)}, expected {_ranks_of(contributors)}"
            )


def _check_header(schedule: Schedule) -> None:
    if schedule.op not in OPS:
        raise ScheduleError(f"unknown op {schedule.op!r}; expected one of {OPS}")
    if schedule.ranks < 2:
        raise ScheduleError(f"a collective needs at least 2 ranks, got {schedule.ranks}")
    if schedule.size_bytes < 0:
        raise ScheduleError(f"size_bytes must be >= 0, got {schedule.size_bytes}")
    if not 0 <= schedule.root < schedule.ranks:
        raise ScheduleError(f"root {schedule.root} is outside 0..{schedule.ranks - 1}")
    if schedule.chunks is not None and schedule.chunks < 1:
        raise ScheduleError(f"chunks must be >= 1, got {schedule.chunks}")
    if schedule.relays < 0:
        raise ScheduleError(f"relays must be >= 0, got {schedule.relays}")


def _check_transfer(schedule: Schedule, index: int, transfer: Transfer) -> None:
    for rank in (transfer.src, transfer.dst):
        if not 0 <= rank < schedule.ranks + schedule.relays:
            raise ScheduleError(f"transfer {index} names rank {rank} outside 0..{schedule.ranks + schedule.relays - 1}")
    if transfer.src == transfer.dst:
        raise ScheduleError(f"transfer {index} sends from rank {transfer.src} to itself")
    if transfer.nbytes < 0:
        raise ScheduleError(f"transfer {index} has negative nbytes {transfer.nbytes}")
    if transfer.piece < 0:
        raise ScheduleError(f"transfer {index} has negative piece id {transfer.piece}")
    if transfer.pieces < 1 or (transfer.pieces > 1 and schedule.chunks is None):
        raise ScheduleError(f"transfer {index} carries {transfer.pieces} pieces; a transfer carries one "
                            "piece, or several in a schedule that states its chunks")
    for parent in transfer.after + transfer.after_sent:
        if not 0 <= parent < index:
            raise ScheduleError(
                f"transfer {index} waits for transfer {parent}; `after` and `after_sent` may only name smaller ids, "
                "so the DAG is acyclic and the ids a topological order"
            )


def _piece_bytes(schedule: Schedule) -> dict[int, int]:
    """Piece id -> nbytes, requiring every transfer of a piece to carry the same number of bytes."""
    sizes: dict[int, int] = {}
    for transfer in schedule.transfers:
        nbytes = sizes.setdefault(transfer.piece, transfer.nbytes)
        if nbytes != transfer.nbytes:
            raise ScheduleError(
                f"piece {transfer.piece} is sent with {nbytes} bytes and with {transfer.nbytes} bytes "
                f"(transfer {transfer.id})"
            )
    return sizes


def _infer_chunks(schedule: Schedule, sizes: dict[int, int]) -> int:
    """The chunk count whose piece layout the schedule's piece sizes match exactly.

    Every piece size matching also proves that the pieces' bytes sum to S. When several chunk counts
    match (only for tiny S), they agree on which rank owns every piece, so the smallest is as good.
    """
    pieces_bytes = block_bytes(schedule.op, schedule.ranks, schedule.size_bytes)
    for chunks in range(1, max(sizes, default=0) + 2):
        if sum(min(chunks, piece_bytes) for piece_bytes in pieces_bytes) != len(sizes):
            continue
        if piece_layout(schedule.ranks, schedule.size_bytes, chunks, schedule.op) == sizes:
            return chunks
    raise ScheduleError(
        f"piece sizes (total {sum(sizes.values())} bytes over {len(sizes)} pieces) do not split "
        f"{schedule.size_bytes} bytes into {schedule.ranks} pieces of near-equal chunks for any chunk count"
    )


def _carried_pieces(t: Transfer, layout: dict[int, int]) -> list[int]:
    """The non-empty pieces ``t`` carries, checking that its bytes are theirs."""
    pieces = [piece for piece in range(t.piece, t.piece + t.pieces) if piece in layout]
    nbytes = sum(layout[piece] for piece in pieces)
    if not pieces or nbytes != t.nbytes:
        raise ScheduleError(
            f"transfer {t.id} carries {t.nbytes} bytes as pieces {t.piece}..{t.piece + t.pieces - 1}, "
            f"which hold {nbytes} bytes"
        )
    return pieces


Holdings = dict[tuple[int, int], int]
Receipt = tuple[int, bool, int]  # (transfer id, reduce, payload bitset)


def _initial_and_expected(schedule: Schedule, layout: dict[int, int], chunks: int) -> tuple[Holdings, Holdings]:
    """(rank, piece) -> contributor bitset, before the collective and as it must end."""
    p, root, op = schedule.ranks, schedule.root, schedule.op
    everyone = (1 << p) - 1
    block = {piece: piece // chunks for piece in layout}
    if op in ("all_gather", "gather"):
        initial = {(block[piece], piece): 1 << block[piece] for piece in layout}
        holders = range(p) if op == "all_gather" else (root,)
        return initial, {(rank, piece): 1 << block[piece] for rank in holders for piece in layout}
    if op in ("broadcast", "send_recv"):
        initial = {(root, piece): 1 << root for piece in layout}
        holders = range(p) if op == "broadcast" else ((root + 1) % p,)
        return initial, {(rank, piece): 1 << root for rank in holders for piece in layout}
    if op == "all_to_all":
        initial = {(block[piece] // p, piece): 1 << (block[piece] // p) for piece in layout}
        return initial, {(block[piece] % p, piece): 1 << (block[piece] // p) for piece in layout}
    initial = {(rank, piece): 1 << rank for rank in range(p) for piece in layout}
    if op == "reduce_scatter":
        return initial, {(block[piece], piece): everyone for piece in layout}
    holders = range(p) if op == "all_reduce" else (root,)
    return initial, {(rank, piece): everyone for rank in holders for piece in layout}


def _execute(schedule: Schedule, carried: list[list[int]], initial: Holdings) -> Holdings:
    """Run the schedule symbolically and return every (rank, piece)'s final contributor bitset.

    Writes into one copy must be ordered by happens-before whenever one of them overwrites, so the
    final state does not depend on timing; a reduce must add only contributions the receiver lacks.
    """
    last_use = {parent: t.id for t in schedule.transfers for parent in t.after + t.after_sent}
    ancestors: dict[int, int] = {}
    receipts: dict[tuple[int, int], list[Receipt]] = {}
    held = dict(initial)
    for t in schedule.transfers:
        mine = 0
        for parent in t.after:  # delivered before t starts
            mine |= ancestors[parent] | (1 << parent)
        for parent in t.after_sent:  # started before t: what it waited for happened before t
            mine |= ancestors[parent]
        for piece in carried[t.id]:
            payload = _guaranteed(t, piece, initial, receipts.get((t.src, piece), ()), mine)
            _receive(t, piece, held, receipts.setdefault((t.dst, piece), []), payload, mine,
                     t.dst >= schedule.ranks)
        if t.id in last_use:
            ancestors[t.id] = mine
        for parent in t.after + t.after_sent:
            if last_use[parent] == t.id:
                ancestors.pop(parent, None)
    return held


def _guaranteed(t: Transfer, piece: int, initial: Holdings, sender_receipts: Sequence[Receipt],
                ancestors: int) -> int:
    """The sender's copy of the piece as guaranteed by the receipts that happen before ``t``."""
    payload = 0
    for receipt_id, reduce, receipt_payload in reversed(sender_receipts):
        if not ancestors >> receipt_id & 1:
            continue
        payload |= receipt_payload
        if not reduce:
            break
    else:
        payload |= initial.get((t.src, piece), 0)
    if not payload:
        raise ScheduleError(
            f"transfer {t.id}: rank {t.src} sends piece {piece} before it is guaranteed to hold it"
        )
    return payload


def _receive(t: Transfer, piece: int, held: Holdings, dst_receipts: list[Receipt], payload: int,
             ancestors: int, relay: bool) -> None:
    """Apply ``t`` to its receiver's copy (a relay's starts at zero), rejecting racy or double-counting
    writes."""
    for receipt_id, reduce, _ in reversed(dst_receipts):
        if (not reduce or not t.reduce) and not ancestors >> receipt_id & 1:
            raise ScheduleError(
                f"transfers {receipt_id} and {t.id} both write piece {piece} into rank {t.dst} "
                "without a happens-before order between them"
            )
        if not reduce:
            break
    current = held.get((t.dst, piece), 0)
    if t.reduce and not current and not relay:
        raise ScheduleError(
            f"transfer {t.id} reduces into piece {piece} of rank {t.dst}, which holds none of it"
        )
    if t.reduce and current & payload:
        raise ScheduleError(
            f"transfer {t.id} adds contributions of ranks {_ranks_of(current & payload)} to piece {piece} "
            f"of rank {t.dst} a second time"
        )
    held[(t.dst, piece)] = current | payload if t.reduce else payload
    dst_receipts.append((t.id, t.reduce, payload))


def _ranks_of(bitset: int) -> list[int]:
    return [rank for rank in range(bitset.bit_length()) if bitset >> rank & 1]
