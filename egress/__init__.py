"""Where the platform's outbound calls may go (SSRF): one rule for every server a tenant names, low
in the layers so both outbound clients use it (``connectors.http``, ``identity.outbound``). It
imports nothing of the project."""
