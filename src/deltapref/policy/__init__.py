"""The policy side: SFT, alignment losses with reward-difference coefficients, reference
log-probs, generation."""
