"""Options: the command configs (dataclasses whose fields carry help, choices and ranges:
``commands``), option values from every door checked against those fields (``values``), and the
YAML users write, read as plain values only (``safe_yaml``)."""
