"""numba's compiler for fabricsim's kernels: each is compiled once per machine and kept in numba's
cache, beside its module or in the user's cache folder; where neither can be written (a read-only
install and home), it is compiled afresh in each process rather than failing."""

from numba import njit


def compiled(function):
    """``function`` compiled by numba (its first call compiles it, or loads it from the cache)."""
    try:
        return njit(cache=True)(function)
    except RuntimeError:  # numba found no folder to keep its cache in
        return njit(function)
