"""Tables, engines and queries. Knows nothing of chats or platforms."""
