"""``schedule_times.longest_path`` compiled by numba (``fabricsim.compiler``), for DAGs of many transfers
(imported only by them)."""

from fabricsim.collectives import schedule_times
from fabricsim.compiler import compiled

longest_path = compiled(schedule_times.longest_path)
