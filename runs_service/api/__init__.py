"""HTTP API: one blueprint module per concern."""
