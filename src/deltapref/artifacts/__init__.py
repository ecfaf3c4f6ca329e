"""What deltapref writes and how it knows what it wrote: outputs replaced only when deltapref
made them, and whole (``outputs``); the markers, provenance sidecars and member manifests kept
beside them and read back through checked readers (``records``); content fingerprints of inputs
for caches and run identities (``fingerprint``)."""
