"""The lookup product: a synced lookup-and-redirect index (see LOOKUP.md)."""
