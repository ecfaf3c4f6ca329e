"""Training and applying scorers, mirroring ``policy``: the Trainer (``trainer``), one
``train-scorer`` run and the runs made of several (``run``), and ``score``'s annotation of pairs
(``scoring``). What a scorer kind is — its option, model, readout, columns and Δ — is its unit in
``deltapref.scorer_kinds``; its losses are ``deltapref.objectives.scorers``."""
