"""The report of a pipeline run: its ``report:`` options (``options``), every number computed
from the run's artifacts (``collect``), its tables and plots (``tables``, ``plots``, ``text``),
and the written ``report.md``, ``report.html`` and ``results.json`` (``build``)."""
