"""Channel adapters: pure protocol code for each payment channel behind one protocol."""
