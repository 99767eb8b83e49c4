"""Book covers: a cover-URL cache speaking the Coce/Cover API (`/cover`), providers, stores."""
