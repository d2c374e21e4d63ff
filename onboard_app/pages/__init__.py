"""One module per page: UI only."""
