"""The index: the journal folded into index.sqlite (runs, events, the novelty and registry sections), and
the reduction of a record to a Run. Derived from the journal alone; delete it and the next command rebuilds it."""
