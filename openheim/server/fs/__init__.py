"""The ``/ws`` fs channel: a tenant's workspace as requests (list, read, write, ...) and live
watches. ``channel`` parses and serves requests, ``paths`` resolves them race-free inside the
workspace, ``watcher`` turns file system changes into bounded batches of events."""
