// Control socket (being written).
