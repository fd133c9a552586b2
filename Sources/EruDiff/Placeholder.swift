// Module EruDiff: see DESIGN.md §2. (Placeholder until its issue lands.)
