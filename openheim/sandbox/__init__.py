"""The sandbox between tools and the OS: policies, the backends that enforce them, and
race-free path resolution for the file tools and the fs channel."""
