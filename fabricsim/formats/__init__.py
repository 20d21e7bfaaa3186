"""Formats of the field, in and out: nccl-tests logs (text and ``-J`` JSON), calibrated fabric presets,
InfraGraph fabrics and Chrome trace-event timelines."""
