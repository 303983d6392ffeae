"""The Agent Client Protocol face: JSON-RPC codec, ACP payloads, dispatcher, stdio transport."""
