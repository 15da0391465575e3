"""pytest hooks for flop budgets (filled in by the plugin work)."""
