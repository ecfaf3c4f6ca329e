"""Launch presets installed with deltapref: accelerate configs for DDP, FSDP2 and DeepSpeed
ZeRO-2/3 (``presets/*.yaml``) and ``deltapref launch PRESET COMMAND ...``, which runs a command
under one of them (the process count, machines and precision set from the command line)."""
