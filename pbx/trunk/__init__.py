"""trunk."""
