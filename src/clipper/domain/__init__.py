"""What a clip job is, free of storage and transport: statuses, events, rules."""
