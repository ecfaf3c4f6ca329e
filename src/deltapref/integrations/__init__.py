"""Bridges to other training libraries (each an optional extra): :mod:`deltapref.integrations.trl`."""
