"""Models: the Th1nker (read, think, write) and its parts."""
