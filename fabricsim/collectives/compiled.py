"""``schedule_times.longest_path`` compiled by numba, for DAGs of many transfers (imported only by them).

numba compiles it once per machine and keeps it in its cache beside ``schedule_times.py``.
"""

from numba import njit

from fabricsim.collectives import schedule_times

longest_path = njit(cache=True)(schedule_times.longest_path)
