"""What each layer costs: inference and training counts, batch norm folding, the lower bound."""
