"""PIV card edge: APDUs, a client, transports, a virtual card and card profiles."""
