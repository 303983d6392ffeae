"""The HTTP/WebSocket server face: REST routes, the /ws connection actor, the fs channel."""
