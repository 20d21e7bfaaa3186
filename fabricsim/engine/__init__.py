"""Engine: runs schedules on a fabric in a SimPy environment, time in integer picoseconds.

Only this package imports simpy.
"""
