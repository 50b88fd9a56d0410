"""The memory library: stateful memories, their readers and writers, and controllers."""
