"""The forward pass of the models deltapref trains and scores with: padded and packed batches
(``batching``), forwards in groups of similar length (``length_groups``), a policy's response
log-probs (``logprobs``) and a scorer's readouts (``readouts``)."""
