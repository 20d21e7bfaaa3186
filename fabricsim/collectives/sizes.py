"""Sizes: a collective's nccl-tests S (the ``size(B)`` column) from each rank's contribution."""


def size_bytes_of(op: str, ranks: int, per_rank_bytes: int) -> int:
    """The nccl-tests S of a collective from each rank's contribution."""
    return per_rank_bytes * ranks if op in ("all_gather", "gather") else per_rank_bytes
