"""What every training run shares, policy or scorer: the base Trainer (``trainer``), its
arguments and their checks (``arguments``), the run's folder and final save (``run_folder``),
checkpoints and run identity (``checkpoints``), the common run steps (``shared``), processes and
sharding (``distributed``, ``sharding``), LoRA (``lora``), host memory (``host_memory``), the
model card (``card``) and the memory plan of a layout (``plan``). Imports nothing heavy, so the
CLI can use ``distributed`` before torch loads."""
