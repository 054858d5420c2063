"""The settings pane: one page per file, changes apply live."""
